"""Try to import each module named in argv; print {name: "ok" | the exception's type} as JSON."""
import json
import sys

found = {}
for name in sys.argv[1:]:
    try:
        __import__(name)
        found[name] = "ok"
    except BaseException as exc:  # noqa: BLE001 - what stopped it is the answer
        found[name] = type(exc).__name__
print(json.dumps(found))
