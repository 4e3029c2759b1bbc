# SPDX-License-Identifier: MIT
"""A minimal PEP 517 build backend for the pure-Python difftop package (standard library only).

It builds a wheel (and an sdist) from python/difftop/*.py and the [project] table of
pyproject.toml, so `pip install ./python` needs no setuptools download and works offline.
Editable installs (pip install -e) are served with a .pth file pointing at this directory.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = "difftop"


def _project():
    try:
        import tomllib
        with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
            data = tomllib.load(f)
        return data["project"], data
    except ImportError:  # Python < 3.11: the few keys we need, read with regular expressions
        text = open(os.path.join(HERE, "pyproject.toml")).read()
        get = lambda k: re.search(rf'^{k}\s*=\s*"([^"]*)"', text, re.M).group(1)
        proj = {"name": get("name"), "version": get("version"), "description": get("description"),
                "requires-python": get("requires-python"), "dependencies": ["numpy"],
                "optional-dependencies": {"torch": ["torch"], "gym": ["gymnasium"],
                                          "plot": ["matplotlib"]},
                "entry-points": {"gymnasium.envs": {"difftop": "difftop.envs:register_envs"}}}
        return proj, {"project": proj}


def _meta():
    proj, _ = _project()
    return proj


def _dist(proj):
    return f"{proj['name']}-{proj['version']}"


def _metadata(proj):
    lines = ["Metadata-Version: 2.1", f"Name: {proj['name']}", f"Version: {proj['version']}",
             f"Summary: {proj.get('description', '')}", "License: MIT",
             f"Requires-Python: {proj.get('requires-python', '>=3.8')}"]
    lines += [f"Requires-Dist: {d}" for d in proj.get("dependencies", [])]
    for extra, deps in proj.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    return "\n".join(lines) + "\n"


def _entry_points(proj):
    out = []
    for group, eps in proj.get("entry-points", {}).items():
        out.append(f"[{group}]")
        out += [f"{k} = {v}" for k, v in eps.items()]
    return "\n".join(out) + "\n"


def _sources():
    root = os.path.join(HERE, PKG)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                full = os.path.join(dirpath, fn)
                yield full, os.path.relpath(full, HERE)


def _write_wheel(wheel_directory, files):
    proj = _meta()
    dist = _dist(proj)
    distinfo = f"{dist}.dist-info"
    name = f"{dist}-py3-none-any.whl"
    records = []
    files = list(files) + [
        (f"{distinfo}/METADATA", _metadata(proj).encode()),
        (f"{distinfo}/WHEEL", b"Wheel-Version: 1.0\nGenerator: difftop-backend\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{distinfo}/entry_points.txt", _entry_points(proj).encode()),
    ]
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            z.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{arc},sha256={digest},{len(data)}")
        records.append(f"{distinfo}/RECORD,,")
        z.writestr(f"{distinfo}/RECORD", "\n".join(records) + "\n")
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = [(arc.replace(os.sep, "/"), open(full, "rb").read()) for full, arc in _sources()]
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (HERE + "\n").encode()
    return _write_wheel(wheel_directory, [(f"__editable__.{PKG}.pth", pth)])


def build_sdist(sdist_directory, config_settings=None):
    proj = _meta()
    dist = _dist(proj)
    name = f"{dist}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        members = [(full, arc) for full, arc in _sources()]
        for extra in ("pyproject.toml", "_pep517/backend.py"):
            members.append((os.path.join(HERE, extra), extra))
        for full, arc in members:
            tar.add(full, arcname=f"{dist}/{arc}")
        pkg_info = _metadata(proj).encode()
        info = tarfile.TarInfo(f"{dist}/PKG-INFO")
        info.size = len(pkg_info)
        tar.addfile(info, io.BytesIO(pkg_info))
    return name
