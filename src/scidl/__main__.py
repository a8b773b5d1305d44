"""``python -m scidl`` (used by ``torchrun -m scidl run ...``)."""

from scidl.cli import main

main()
