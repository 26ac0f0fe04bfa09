import sys

chunk = "x" * 65536
for _ in range(320):  # 20 MiB on each stream
    sys.stdout.write(chunk)
    sys.stderr.write(chunk)
