#!/bin/bash
# The verifier budget on this machine's kernel: every datapath program loaded
# alone within 250,000 processed instructions (scripts/verify.sh; its table
# and build/verify/host.json are what make verify shows).
exec bash "$(dirname "$0")/../../scripts/verify.sh" --tap --kernels host
