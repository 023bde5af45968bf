"""``python -m bench [trickle|api|callbacks|inbox|growth]``: one scenario; the throughput benchmark by default."""

import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["trickle"]:
        from bench.trickle import main
    elif sys.argv[1:] == ["api"]:
        from bench.api import main
    elif sys.argv[1:] == ["callbacks"]:
        from bench.callbacks import main
    elif sys.argv[1:] == ["inbox"]:
        from bench.inbox import main
    elif sys.argv[1:] == ["growth"]:
        from bench.growth import main
    else:
        from bench.throughput import main
    main()
