#!/usr/bin/env bash
# Print a free TCP port on 127.0.0.1.
exec "${GIK_PY:-/usr/bin/python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
