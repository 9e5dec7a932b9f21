"""Map the design card's top-level folders under the one import root ``xueliang``.

``gateway/`` is imported as ``xueliang.gateway``, ``api/`` as ``xueliang.api`` and so on, so the
generic folder names never clash with other installed distributions. ``xueliang`` itself is a
PEP 420 namespace package: no folder of its own is needed.
"""

from setuptools import find_packages, setup

PARTS = ("gateway", "api", "connectors", "inference", "events")

packages: list[str] = ["xueliang.config"]
package_dir: dict[str, str] = {"xueliang.config": "config"}
for part in PARTS:
    root = f"xueliang.{part}"
    package_dir[root] = part
    packages.append(root)
    packages += [f"{root}.{sub}" for sub in find_packages(where=part)]

# the wall page's files: a data-only package (no __init__.py), listed so setuptools ships it without
# warning that an importable folder is missing from ``packages``
packages.append("xueliang.api.wall.static")

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"xueliang.config": ["*.yaml", "*.csv", "*.md"], "xueliang.api.wall.static": ["*"]},
)
