"""`python -m feedsvc.profiles [DIRECTORY]`: checks the built-in profiles and DIRECTORY's against the schema
and prints their digests, comma-separated, for CHECKED_ENV (deploy/gunicorn.conf.py runs it in the master).
A file that fails exits non-zero, naming it."""
import sys

from feedsvc.profiles import ProfileError, checked_digests


def main(argv: list[str]) -> int:
    try:
        print(",".join(checked_digests(argv[0] if argv else None)))
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
