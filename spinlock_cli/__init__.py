"""The ``spinlock`` command line: one module per command group, imported lazily.

``main`` parses arguments without importing torch or Dagster (``spinlock --help`` and argument
errors are fast); each command imports what it needs when it runs. Exit codes: 0 success,
1 bad data or a failed run, 2 a bad config, argument or path (nothing written), 130 / 143
interrupted by SIGINT / SIGTERM (no half file left).
"""
