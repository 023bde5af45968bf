// Novu's browser client (@novu/js) against a dispatcher API: session, list, counts, marks, and a
// live notification. Driven by tests/dispatcher/api/inbox/test_novu_js_e2e.py: it reads the
// settings from the environment, prints one JSON line per step, prints {"step": "live"} once
// its socket is connected, and waits for the test to trigger a notification.
import { Novu } from '@novu/js';

const { API_URL, APPLICATION_IDENTIFIER, SUBSCRIBER_ID, SUBSCRIBER_HASH } = process.env;
const WAIT_MS = 60_000;

function report(step, data) {
  process.stdout.write(`${JSON.stringify({ step, data })}\n`);
}

function unwrap(step, result) {
  if (result.error) {
    report('error', { step, message: String(result.error.message), cause: String(result.error.cause) });
    process.exit(1);
  }
  return result.data;
}

const novu = new Novu({
  applicationIdentifier: APPLICATION_IDENTIFIER,
  subscriber: SUBSCRIBER_ID,
  subscriberHash: SUBSCRIBER_HASH,
  apiUrl: API_URL,
  socketUrl: API_URL,
});

const listed = unwrap('list', await novu.notifications.list({ limit: 10 }));
report('list', {
  hasMore: listed.hasMore,
  notifications: listed.notifications.map((n) => ({ id: n.id, body: n.body, isRead: n.isRead })),
});

const counts = unwrap(
  'count',
  await novu.notifications.count({ filters: [{ read: false }, { seen: false }, { archived: true }] }),
);
report('count', counts.counts.map((c) => c.count));

const [first, second] = listed.notifications;
const read = unwrap('read', await first.read());
report('read', { isRead: read.isRead, isSeen: read.isSeen });
unwrap('seen', await second.seen());
const archived = unwrap('archive', await second.archive());
report('archive', { isArchived: archived.isArchived });
const after = unwrap(
  'count',
  await novu.notifications.count({ filters: [{ read: false }, { seen: false }, { archived: true }] }),
);
report('count-after', after.counts.map((c) => c.count));

const received = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no live notification')), WAIT_MS);
  novu.on('notifications.notification_received', ({ result }) => {
    clearTimeout(timer);
    resolve(result);
  });
});
let live = false;
novu.on('notifications.unread_count_changed', ({ result }) => {
  if (!live) {
    live = true;
    report('live', result);
  }
});
const notification = await received;
report('received', { body: notification.body, isRead: notification.isRead, tags: notification.tags });
novu.socket.disconnect();
process.exit(0);
