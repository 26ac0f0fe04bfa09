import sys

print("hello", *sys.argv[1:])
print("stdin:", sys.stdin.read().strip())
print("to stderr", file=sys.stderr)
