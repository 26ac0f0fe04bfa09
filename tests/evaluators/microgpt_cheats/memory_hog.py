"""Cheat: hoard memory (address space) until the sandbox's memory limit stops it."""

hoard = []
while True:
    hoard.append(bytearray(64 << 20))
