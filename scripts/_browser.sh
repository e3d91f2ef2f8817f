#!/usr/bin/env bash
# Install the headless browser of the live-view end-to-end test (tests/test_live_view.py) when it is missing:
# Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver). Nothing is downloaded at
# test time; Selenium is pointed at the system chromedriver. Needs root (or sudo) and apt.
set -euo pipefail
if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "scripts/_browser.sh: chromium and chromium-driver are missing and this user is not root:" \
         "install them with apt-get (Debian packages chromium, chromium-driver)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1; then
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
fi
/usr/bin/chromedriver --version >/dev/null
