"""Maps the top-level folders into the `keystream` namespace (keystream.broker <- broker/, ...)."""

from setuptools import find_packages, setup

ROOTS = ["broker", "auth", "certs", "registry"]

packages = find_packages(include=["keystream", "keystream.*"])
package_dir = {"keystream": "keystream"}
for root in ROOTS:
    package_dir[f"keystream.{root}"] = root
    packages += [f"keystream.{p}" for p in find_packages(include=[root, f"{root}.*"])]

setup(packages=packages, package_dir=package_dir)
