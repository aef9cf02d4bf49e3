# zsh -f complete.zsh DIR WORDS...: prints, one per line, the matches zsh's completion offers
# after WORDS (as if Tab were pressed after them), using the _muxkit file in DIR.
zmodload zsh/zpty
dir=$1; shift
zpty -b z zsh -f -i
zpty -w z "PS1=''; PROMPT=''; unsetopt zle_bracketed_paste 2>/dev/null"
zpty -w z "fpath=($dir \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "compadd() { local -a __m; builtin compadd -A __m \"\$@\"; (( \$#__m )) && print -rl -- MATCH:\${^__m}; builtin compadd \"\$@\"; }"
zpty -w z "zstyle ':completion:*' list-grouped false"
zpty -n -w z "$* "$'\t'
out=""
for i in {1..50}; do
  zpty -r -t z line && out+=$line
  sleep 0.05
done
print -r -- $out | tr -d "\r" | grep -o "MATCH:[^[:space:]]*" | grep -v "[$]" | sed "s/^MATCH://" | sort -u
zpty -d z
