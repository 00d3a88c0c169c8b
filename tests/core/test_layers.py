"""The package layers, read from the imports: the core never names audiotok or a tokenizer family,
the model layer never imports the hub, and each family is one folder with its declaration."""
import ast
from pathlib import Path

from vistok.registry import families

ROOT = Path(__file__).resolve().parents[2]
# The token generator is a core instrument (gFID, RobusTok post-training pairs) that the core's
# commands use by name; it is declared as a family only so that it is saved, loaded and trained
# like one.
CORE_FAMILIES = {"generator"}


def _family_folders():
    folders = {}
    for name, family in families().items():
        module = family.model.split(":")[0]
        folder = (ROOT / module.replace(".", "/")).parent
        assert (folder / "family.py").is_file(), f"family {name}: {folder} has no family.py declaring it"
        folders[name] = folder
    return folders


def _imports(path: Path):
    """Every module a file imports, plus every "package.module:attr" / dotted string it holds."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(("vistok.", "audiotok")):
            yield node.value.split(":")[0]


def _modules(folder: Path) -> str:
    return ".".join(folder.relative_to(ROOT).parts)


def test_the_core_never_imports_audiotok_or_a_tokenizer_family():
    folders = _family_folders()
    plugin = {name: folder for name, folder in folders.items() if name not in CORE_FAMILIES}
    plugin_modules = {_modules(f) for f in plugin.values()}
    bad = []
    for path in sorted((ROOT / "vistok").rglob("*.py")):
        if any(folder in path.parents for folder in plugin.values()):
            continue
        if "audiotok" in path.read_text():
            bad.append(f"{path.relative_to(ROOT)} names audiotok")
        for module in _imports(path):
            if any(module == m or module.startswith(m + ".") for m in plugin_modules):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def test_the_model_layer_never_imports_the_hub():
    bad = [f"{p.relative_to(ROOT)} imports {m}" for root in ("vistok/models", "audiotok/models")
           for p in sorted((ROOT / root).rglob("*.py")) for m in _imports(p)
           if m == "vistok.hub" or m.startswith("vistok.hub.")]
    assert not bad, "\n".join(bad)


def test_families_import_each_other_only_through_their_packages():
    """A family folder may build on another family's public package (TiTok's pixel decoder is
    MaskGIT-VQGAN's), its model and config, but not into the rest of that family's folder."""
    folders = _family_folders()
    for name, folder in folders.items():
        others = {_modules(f) for f in folders.values() if f != folder}
        for path in folder.rglob("*.py"):
            for module in _imports(path):
                inner = [m for m in others if module.startswith(m + ".") and not module.endswith((".model", ".config"))]
                assert not inner, f"{path.relative_to(ROOT)} imports {module} (another family's internals)"
