"""The model zoo of tests/python/test_zoo.py: catalog.py lists the architectures, harness.py runs one of
them against PyTorch and formats the table. scripts/zoo.sh runs it under Debian's CPU torch."""
