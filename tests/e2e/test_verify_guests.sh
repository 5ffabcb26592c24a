#!/bin/bash
# The verifier budget in Debian's 6.1 and 6.12 kernels, each booted under
# QEMU (scripts/verify.sh; the testbed is built on first use).
exec bash "$(dirname "$0")/../../scripts/verify.sh" --tap --kernels "6.1 6.12"
