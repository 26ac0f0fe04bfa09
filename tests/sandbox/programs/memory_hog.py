blocks = []
while True:
    blocks.append(b"\x01" * (64 << 20))
