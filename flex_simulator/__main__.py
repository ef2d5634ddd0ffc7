"""``python -m flex_simulator`` runs the same CLI as the ``flex-simulator`` script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
