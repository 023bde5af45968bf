import dispatcher


def test_public_names_are_exported_sorted_and_exist() -> None:
    assert dispatcher.__all__ == sorted(dispatcher.__all__)
    for name in dispatcher.__all__:
        assert getattr(dispatcher, name) is not None
    assert {"enqueue_action", "run_action", "Ok", "Err", "app"} <= set(dispatcher.__all__)


def test_every_action_has_a_named_task_on_the_actions_queue() -> None:
    from dispatcher.actions import catalogue
    from dispatcher.celery_app import app

    for spec in catalogue:
        task = app.tasks[f"action.{spec.name}"]
        assert task.acks_late and task.reject_on_worker_lost
        assert spec.description, f"{spec.name} needs a one-line docstring for --list"
    assert app.conf.task_routes["action.*"]["queue"] == app.conf.task_default_queue


def test_each_queue_receives_only_its_own_messages() -> None:
    from dispatcher.celery_app import app

    bindings = {
        queue.name: (queue.exchange.name, queue.routing_key) for queue in app.conf.task_queues
    }
    assert len(set(bindings.values())) == len(bindings)
    for name, (exchange, routing_key) in bindings.items():
        assert exchange == name
        assert routing_key == name
