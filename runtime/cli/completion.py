"""Shell completion scripts, written from the parser itself so they cannot drift from it: bash,
and zsh through zsh's own ``bashcompinit``."""

from __future__ import annotations

import argparse

from .parser import PROG

_FUNCTION = "_albert_onnx"


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings]


def _words(words: list[str]) -> str:
    return " ".join(words)


def _verb_case(name: str, verb: argparse.ArgumentParser) -> str:
    """One verb's branch: its options, and what follows each option that takes a value."""
    values = []
    for action in verb._actions:
        if not action.option_strings or action.nargs == 0:
            continue
        pattern = "|".join(action.option_strings)
        if action.choices:
            values.append(f'        {pattern}) COMPREPLY=($(compgen -W "{_words(list(action.choices))}" -- "$cur")); '
                          "return;;")
        else:  # a file, folder, number or word: let the shell complete paths
            values.append(f'        {pattern}) COMPREPLY=($(compgen -f -- "$cur")); return;;')
    positional = [list(a.choices) for a in verb._actions if not a.option_strings and a.choices]
    words = _words(positional[0]) if positional else ""
    lines = [f"    {name})", f'      opts="{_words(_options(verb))}"', f'      choices="{words}"',
             '      case "$prev" in', *values, "      esac;;"]
    return "\n".join(lines)


def bash_script(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)
    cases = "\n".join(_verb_case(name, verb) for name, verb in verbs.items())
    return f"""# bash completion for {PROG}; written by `{PROG} completion bash`
{_FUNCTION}() {{
  local cur prev verb="" i opts="" choices=""
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in
      -*) ;;
      *) verb="${{COMP_WORDS[i]}}"; break;;
    esac
  done
  if [[ -z "$verb" ]]; then
    COMPREPLY=($(compgen -W "{_words(list(verbs))} {_words(_options(parser))}" -- "$cur"))
    return
  fi
  case "$verb" in
{cases}
    *) return;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n "$choices" ]]; then
    COMPREPLY=($(compgen -W "$choices" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -o filenames -F {_FUNCTION} {PROG}
"""


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell`` (``bash`` or ``zsh``)."""
    if shell == "bash":
        return bash_script(parser)
    return (f"# zsh completion for {PROG}; written by `{PROG} completion zsh`: the bash script, run by zsh's "
            f"bashcompinit.\n# In ~/.zshrc, after compinit: eval \"$({PROG} completion zsh)\"\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(parser))
