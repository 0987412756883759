"""Verification levels: what a verdict establishes about a file (the one definition).

The verifier decides a release's level from evidence, signs it in its verdict, and every client
accepts a release only at a level its trust policy names. A level is never a publisher's claim:
"quantized" is read from the file's own tensor types.

- converted    a full-precision GGUF rebuilt bit-exactly from an upstream checkpoint: the
               verifier ran llama.cpp's converter again on the upstream files (config,
               tokenizer, safetensors) that the signed conversion recipe names by digest.
- reproduced   rebuilt bit-exactly from a base release that is itself verified, with the signed
               recipe; `chain` lists the base and its own bases down to the origin.
- original     a full-precision file signed by its publisher, statically checked and probed,
               with no build evidence.
- unreproduced a quantized file with no base, a quant of a base that is not verified at a level
               of its own, or one no verifier could rebuild. Probes ran, nothing vouches for how
               it was built. Refused by the default policy.

Probes run at every level: they can reject a release, never raise its level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from assay.core.errors import FormatError
from assay.core.typed import Digest, FieldError, Strict, load

CONVERTED, REPRODUCED, ORIGINAL, UNREPRODUCED = "converted", "reproduced", "original", "unreproduced"
LEVELS = (CONVERTED, REPRODUCED, ORIGINAL, UNREPRODUCED)
DEFAULT_ACCEPTED = (CONVERTED, REPRODUCED, ORIGINAL)
# A base at one of these levels is "itself verified" for the quants built from it.
BUILDS_ON = (CONVERTED, REPRODUCED, ORIGINAL)
FULL_PRECISION_TYPES = frozenset({"F32", "F16", "BF16", "F64"})
MAX_CHAIN = 16

DESCRIPTIONS = {
    CONVERTED: "full-precision file rebuilt bit-exactly from its upstream checkpoint",
    REPRODUCED: "rebuilt bit-exactly by the verifier from a verified base with the signed recipe",
    ORIGINAL: "full-precision file signed by its publisher, checked and probed; no build evidence",
    UNREPRODUCED: "quantized file with no build evidence: nobody rebuilt it from a verified base",
}


def check_level(name: object, where: str = "level") -> str:
    if name not in LEVELS:
        raise FormatError(f"unknown verification level {name!r} in {where}: use one of {', '.join(LEVELS)}")
    return name  # type: ignore[return-value]


def parse_level_list(text: str | list, where: str = "levels") -> list[str]:
    """'reproduced,original' or a list -> checked, de-duplicated level names (at least one)."""
    items = text.split(",") if isinstance(text, str) else text
    if not isinstance(items, list):
        raise FormatError(f"{where} must be a list of verification levels")
    names = [check_level(item.strip() if isinstance(item, str) else item, where) for item in items if item != ""]
    if not names:
        raise FormatError(f"{where} names no verification level: use one or more of {', '.join(LEVELS)}")
    return list(dict.fromkeys(names))


def _level_name(name: str) -> str:
    if name not in LEVELS:
        raise ValueError(f"is an unknown verification level {name[:40]!r}: use one of {', '.join(LEVELS)}")
    return name


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be a positive integer, not {value}")
    return value


LevelName = Annotated[str, AfterValidator(_level_name)]


class _ChainLinkDoc(Strict):
    reference: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    version: Annotated[int, AfterValidator(_positive)]
    digest: Digest
    level: LevelName


class _LevelDoc(Strict):
    """A level as a verdict signs it (`assayLevel`): name, the chain it rests on, and why."""
    name: LevelName
    chain: Annotated[list[_ChainLinkDoc], Field(max_length=MAX_CHAIN)]
    reason: Annotated[str, StringConstraints(max_length=1000)]

    @model_validator(mode="after")
    def _reproduced_names_its_base(self) -> "_LevelDoc":
        if self.name == REPRODUCED and not self.chain:
            raise FieldError("chain", "is empty: a reproduced release must name the base it was rebuilt from")
        return self


def is_full_precision(tensor_types: dict[str, int] | list[str]) -> bool:
    """True when every tensor of the file is stored as a float type (F32/F16/BF16/F64)."""
    names = list(tensor_types)
    return bool(names) and all(t in FULL_PRECISION_TYPES for t in names)


@dataclass(frozen=True)
class ChainLink:
    """One release a level rests on: the base, then the base's base, down to the origin."""

    reference: str
    version: int
    digest: str
    level: str

    def to_dict(self) -> dict:
        return {"reference": self.reference, "version": self.version, "digest": self.digest, "level": self.level}

    @classmethod
    def from_dict(cls, data: object, where: str = "chain") -> "ChainLink":
        return cls._of(load(_ChainLinkDoc, data, what="invalid", root=where))

    @classmethod
    def _of(cls, doc: "_ChainLinkDoc") -> "ChainLink":
        return cls(doc.reference, doc.version, doc.digest, doc.level)


@dataclass(frozen=True)
class Level:
    """A release's level with what it rests on and, for `unreproduced`, why."""

    name: str
    chain: tuple[ChainLink, ...] = ()
    reason: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def origin(self) -> str:
        """The level of the release at the bottom of the chain (this one's when it has none)."""
        return self.chain[-1].level if self.chain else self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "chain": [link.to_dict() for link in self.chain], "reason": self.reason}

    @classmethod
    def from_dict(cls, data: object, where: str = "level", what: str = "invalid") -> "Level":
        """`what` begins the error ("invalid level.name ..."; "invalid statement:" in a verdict)."""
        doc = load(_LevelDoc, data, what=what, root=where)
        return cls(doc.name, tuple(ChainLink._of(link) for link in doc.chain), doc.reason)

    def chain_text(self) -> str:
        """One line: 'this <- base (level) <- base's base (level)'; or why there is no chain."""
        if not self.chain:
            return {ORIGINAL: "origin: this file (no base)", CONVERTED: "origin: upstream checkpoint"}.get(
                self.name, f"no build chain{': ' + self.reason if self.reason else ''}")
        return "built from " + " <- ".join(f"{link.reference}@{link.version} ({link.level})" for link in self.chain)


def decide(*, full_precision: bool, has_base: bool, reproduced: bool, base: Level | None = None,
           base_link: ChainLink | None = None, converted: bool = False) -> Level:
    """The level the evidence supports.

    has_base / reproduced: whether the release names a base and the verifier rebuilt it bit-exactly
    from it. base / base_link: the base release's own signed level and its identity (None when the
    base is not a verified release). converted: a release without a base that the verifier
    converted again, bit-exactly, from the upstream files its recipe names."""
    if has_base:
        if not reproduced:
            return Level(UNREPRODUCED, (), "the verifier could not rebuild it from its base")
        if base is None or base_link is None:
            return Level(UNREPRODUCED, (), "its base is not a verified release")
        chain = ((base_link,) + base.chain)[:MAX_CHAIN]
        if base.name not in BUILDS_ON:
            return Level(UNREPRODUCED, chain, f"its base {base_link.reference} is itself {base.name}")
        return Level(REPRODUCED, chain)
    if full_precision and converted:
        return Level(CONVERTED)
    if full_precision:
        return Level(ORIGINAL)
    return Level(UNREPRODUCED, (), "a quantized file published without a base to rebuild it from")


def accepts(accepted: list[str] | tuple[str, ...], level: Level) -> tuple[bool, str]:
    """Does a policy that accepts `accepted` take a release at `level`? The release's level and the
    level its chain starts from must both be accepted: a chain is as strong as its origin."""
    if level.name not in accepted:
        return False, f"its verification level is '{level.name}' ({DESCRIPTIONS[level.name]}{'; ' + level.reason if level.reason else ''})"
    if level.origin not in accepted:
        return False, f"it is {level.name}, but its chain starts at a release of level '{level.origin}' ({DESCRIPTIONS[level.origin]})"
    return True, f"level {level.name} is accepted"


def verdict_passes(checks: list[dict], *, has_base: bool) -> bool:
    """The verdict's PASSED/FAILED from its check results (the one rule; the verifier signs it
    and the registry refuses a verdict that disagrees): every check passed or was skipped, and a
    quant names its reproduce check. A quant's rebuild is skipped only when no verifier can
    rebuild it at all (its level is then unreproduced) or when an earlier check failed."""
    if any(c["result"] not in ("passed", "skipped") for c in checks):
        return False
    return not has_base or any(c["name"] == "reproduce" for c in checks)
