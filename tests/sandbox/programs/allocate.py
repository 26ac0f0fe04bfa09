import sys

block = b"\x01" * (int(sys.argv[1]) << 20)
