"""What a command's ``--help`` prints; :mod:`mnist_research.command` loads it only then."""

from __future__ import annotations

from absl import flags

from mnist_research.config import flags as experiment_flags


def help_text(fv: flags.FlagValues, names: list[str], doc: str | None, program: str) -> str:
    """What ``--help`` prints: ``doc``, then the flags ``names`` as absl lists a module's.

    The command's own flags come first, under ``<program> flags``; the
    experiment flags (train) follow under their config section's title, the
    module absl knows them by (``config.flags.HELP_GROUPS``).
    """
    own = f"{program} flags"
    sections = [m for m in experiment_flags.HELP_GROUPS.values() if m in fv.flags_by_module_dict()]
    for name in names:
        if fv.find_module_defining_flag(name) not in sections:
            fv.register_key_flag_for_module(own, fv[name])
    parts = [(doc or "").strip(), *(fv.module_help(m).strip("\n") for m in [own, *sections])]
    parts.append("--helpfull lists absl's own flags too (--verbosity, --flagfile, ...).")
    return "\n\n".join(p for p in parts if p) + "\n"
