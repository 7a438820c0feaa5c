#!/usr/bin/env python3
"""Download the source distributions whose own test suites the compat runners run, from PyPI with
`pip download --no-binary :all: --no-deps`, and unpack them into target/compat-suites/ (or
$RESPITE_COMPAT_SUITES, or the directory given as the argument). Pinned to the versions the expected
files were written for. Already-unpacked versions are left alone. .ci/run calls this."""
import os
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compat_runner as cr  # noqa: E402
from django_redis_suite import DJANGO_REDIS_VERSION  # noqa: E402
from redis_py_suite import REDIS_PY_VERSION  # noqa: E402

# (PyPI name, version, directory the sdist unpacks to)
SDISTS = [
    ("redis", REDIS_PY_VERSION, f"redis-{REDIS_PY_VERSION}"),
    ("django-redis", DJANGO_REDIS_VERSION, f"django_redis-{DJANGO_REDIS_VERSION}"),
]


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else cr.DEFAULT_SUITES_DIR
    os.makedirs(dest, exist_ok=True)
    status = 0
    for name, version, dirname in SDISTS:
        if os.path.isdir(os.path.join(dest, dirname, "tests")):
            print(f"{name} {version}: already in {dest}/{dirname}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                                "--no-deps", "-d", tmp, f"{name}=={version}"])
            archives = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")]
            if r.returncode != 0 or not archives:
                print(f"{name} {version}: pip download failed", file=sys.stderr)
                status = 1
                continue
            with tarfile.open(os.path.join(tmp, archives[0])) as tar:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12
                    tar.extractall(dest, filter="data")
                else:
                    tar.extractall(dest)
        if not os.path.isdir(os.path.join(dest, dirname, "tests")):
            print(f"{name} {version}: the sdist has no tests/ folder", file=sys.stderr)
            status = 1
            continue
        print(f"{name} {version}: unpacked into {dest}/{dirname}")
    sys.exit(status)


if __name__ == "__main__":
    main()
