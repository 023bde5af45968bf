import sys

if sys.argv[1:] == ["trickle"]:
    from bench.trickle import main
else:
    from bench.throughput import main

main()
