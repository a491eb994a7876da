"""`python -m keystream` runs the same CLI as the `keystream` command."""

from keystream.cli import main

if __name__ == "__main__":
    main()
