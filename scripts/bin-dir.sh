#!/usr/bin/env bash
# Where the binaries `just up` runs are: target/debug for the default
# profile (dev, shared with `just test`), target/release with
# OMS_PROFILE=release.
case "${OMS_PROFILE:-dev}" in
  dev) echo target/debug ;;
  release) echo target/release ;;
  *) echo "OMS_PROFILE must be dev or release, not ${OMS_PROFILE}" >&2; exit 2 ;;
esac
