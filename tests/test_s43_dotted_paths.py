"""The README's dotted library paths work after a bare ``import devolens`` (``devolens.io.tables.read_table`` raised
AttributeError: a package's modules were attributes only once imported; session-43 walkthrough), and the import
stays light."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_paths() -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    found = set(re.findall(r"`(devolens(?:\.[A-Za-z_][A-Za-z0-9_]*){2,})", text))
    return sorted(p for p in found if not p.endswith((".h", ".json", ".csv", ".tif", ".md")))


def test_every_dotted_path_in_the_readme_resolves_after_import_devolens():
    paths = _readme_paths()
    assert len(paths) >= 20 and "devolens.io.tables.read_table" in paths
    code = ("import devolens, sys\nbad = []\nfor p in sys.argv[1:]:\n    obj = devolens\n"
            "    try:\n        for part in p.split('.')[1:]:\n            obj = getattr(obj, part)\n"
            "    except AttributeError as exc:\n        bad.append(f'{p}: {exc}')\nprint('\\n'.join(bad))\n")
    res = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", res.stdout


def test_a_bare_import_stays_light_and_unknown_names_are_attribute_errors():
    code = ("import sys, devolens\nimport devolens.io, devolens.predict, devolens.lineage\n"
            "assert 'numpy' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)\n"
            "for pkg, name in ((devolens.io, 'nope'), (devolens.predict, '__wrapped__')):\n"
            "    assert not hasattr(pkg, name)\n"
            "assert devolens.lineage.names.__name__ == 'devolens.lineage.names'\nprint('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.stdout.strip() == "ok", res.stderr
