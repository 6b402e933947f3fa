#!/usr/bin/env bash
# Ensures RabbitMQ answers on 127.0.0.1:5672 with guest/guest (the listener tests' broker).
# Idempotent: installs rabbitmq-server from Debian's archive when it is missing, starts it when it
# is down, waits until it answers. Fails loudly when it cannot.
set -euo pipefail

answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if answers; then
  echo "rabbitmq: already answering on 127.0.0.1:5672"
  exit 0
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "rabbitmq: installing rabbitmq-server from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq rabbitmq-server
fi
if ! answers; then
  echo "rabbitmq: starting"
  # The Debian package may have started it through its init script already.
  rabbitmq-server -detached || true
fi
for _ in $(seq 1 90); do
  if answers && rabbitmqctl -q status >/dev/null 2>&1; then
    echo "rabbitmq: ready on 127.0.0.1:5672"
    exit 0
  fi
  sleep 1
done
echo "rabbitmq: did not answer on 127.0.0.1:5672 within 90 s" >&2
rabbitmqctl status >&2 || true
exit 1
