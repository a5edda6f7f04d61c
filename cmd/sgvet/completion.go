package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

const completionAbout = `Usage: sgvet completion bash|zsh

Print a script that completes sgvet's commands, flags and flag values in the shell:
formats, severities, providers, regions, log levels, and file names where a flag takes a
file.

  bash:  source <(sgvet completion bash)
         or save it as /etc/bash_completion.d/sgvet, or in
         ~/.local/share/bash-completion/completions/sgvet
  zsh:   source <(sgvet completion zsh)
         or save it as _sgvet in a directory of $fpath
`

func runCompletion(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	c := newCommandFlags("sgvet completion", completionAbout)
	c.operands = true
	_, operands, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(operands) != 1 {
		return usageErrorf("completion needs one shell, bash or zsh (see 'sgvet completion --help')")
	}
	switch operands[0] {
	case "bash":
		_, err = io.WriteString(stdout, bashCompletion(commands()))
	case "zsh":
		_, err = io.WriteString(stdout, zshCompletion(commands()))
	default:
		return usageErrorf("completion: unknown shell %q: bash or zsh", operands[0])
	}
	return err
}

// bashCompletion returns a bash completion script for the commands. The script holds
// every command's flags and their values, so that completing costs no run of sgvet.
func bashCompletion(cmds []command) string {
	var names, cases, flagLists strings.Builder
	for _, c := range cmds {
		if c.name == "help" {
			continue
		}
		fmt.Fprintf(&names, "%s ", c.name)
		if c.flags == nil {
			continue
		}
		var flags []string
		c.flags().flagSet().VisitAll(func(f *pflag.Flag) {
			flags = append(flags, "--"+f.Name)
			forms := []string{c.name + ":--" + f.Name}
			if f.Shorthand != "" {
				flags = append(flags, "-"+f.Shorthand)
				forms = append(forms, c.name+":-"+f.Shorthand)
			}
			if f.NoOptDefVal != "" {
				return // a switch such as --no-cache: no value follows
			}
			pattern := strings.Join(forms, "|")
			switch {
			case f.Annotations[completeValues] != nil:
				fmt.Fprintf(&cases, "\t%s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n",
					pattern, strings.Join(f.Annotations[completeValues], " "))
			case f.Annotations[completeFiles] != nil:
				fmt.Fprintf(&cases, "\t%s) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", pattern)
			default:
				fmt.Fprintf(&cases, "\t%s) return ;;\n", pattern)
			}
		})
		fmt.Fprintf(&flagLists, "\t%s) flags=%q ;;\n", c.name, strings.Join(flags, " "))
	}
	topics := strings.TrimSpace(names.String())
	return fmt.Sprintf(`# bash completion for sgvet. Load it with: source <(sgvet completion bash)
_sgvet() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} flags=""
	COMPREPLY=()
	if (( COMP_CWORD == 1 )); then
		COMPREPLY=($(compgen -W %q -- "$cur"))
		return
	fi
	case "${COMP_WORDS[1]}" in
	help) (( COMP_CWORD == 2 )) && COMPREPLY=($(compgen -W %q -- "$cur")); return ;;
	completion) (( COMP_CWORD == 2 )) && COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
	esac
	case "${COMP_WORDS[1]}:$prev" in
%s	esac
	case "${COMP_WORDS[1]}" in
%s	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	fi
}
complete -F _sgvet sgvet
`, topics+" help", topics, cases.String(), flagLists.String())
}

// zshCompletion returns a zsh completion script: the bash one, run by zsh's bash
// completion emulation, which every zsh since 4.2 ships.
func zshCompletion(cmds []command) string {
	bash := bashCompletion(cmds)
	bash = bash[strings.Index(bash, "\n")+1:]
	return "#compdef sgvet\n# zsh completion for sgvet. Load it with: source <(sgvet completion zsh)\n" +
		"autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }\n" +
		"autoload -U +X bashcompinit && bashcompinit\n" + bash
}
