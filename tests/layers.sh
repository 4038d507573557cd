#!/bin/sh
# layers.sh - checks the layering rules of ARCHITECTURE.md (issue 10) on
# a built tree, so that a change that breaks one fails `make check`
# instead of waiting for the next reader to notice.
#
#   cycles    no object of daemon/, of libmbx (client/) or of proto/
#             depends on an object that depends back on it, directly or
#             through others: for each object, `nm` gives the globals it
#             defines and the ones it uses; a use of another object's
#             global is an edge, and a cycle of edges breaks the rule.
#   bodies    no proto_put_*() or proto_get_*() call in daemon/ or
#             client/: every frame body is encoded and decoded in proto/
#             (proto/body.h); tests/ and the fuzzers may use the raw
#             writers and readers, they build broken frames on purpose.
#   exports   the globals of libmbx.a and the dynamic symbols libmbx.so
#             exports are mbx_* functions that client/mbx.h declares.
#   counters  nothing outside daemon/account.c writes a field of struct
#             account or struct accounts, or what a charge holds (its
#             held.*).  An approximation, by grep: an assignment, a
#             compound assignment or ++/-- applied to FIELD reached as
#             acct->FIELD, accounts.FIELD, held.FIELD or NAME->FIELD for a
#             NAME declared struct account * or struct accounts * in a
#             file of daemon/.  A write through a pointer to the field
#             itself, through a name declared otherwise, or by memset(),
#             is not seen.
#
# Usage, from the top of the tree after `make all`:
#   sh tests/layers.sh [builddir]        (default: $B, else build)
# Prints each broken rule and where it breaks; exits 1 if any did.

set -u

B=${1:-${B:-build}}
failed=0

# broken RULE MESSAGE: one line per place that breaks RULE.
broken() {
	printf 'layers: %s: %s\n' "$1" "$2"
	failed=1
}

for f in "$B/libmbx.a" "$B/libmbx.so.2" "$B/mbxd" daemon/account.h \
    client/mbx.h; do
	if [ ! -e "$f" ]; then
		echo "layers: $f is missing: run from the top of the tree," \
		    "after make all" >&2
		exit 2
	fi
done

# cycles OBJECT...: prints every cycle among the objects, one "cycle:"
# line with its members, then each edge inside it and the symbols it is
# made of; prints nothing when there is none.
cycles() {
	for o in "$@"; do
		nm -g "$o" | awk -v o="$o" '
		    NF == 2 { print o, "U", $2 }
		    NF == 3 { print o, "D", $3 }'
	done | awk '
	function node(o) {
		if (!(o in idx)) {
			idx[o] = ++n
			name[n] = o
		}
		return idx[o]
	}
	{ node($1) }
	$2 == "D" { if (!($3 in def)) def[$3] = $1; next }
	{ nref++; refobj[nref] = $1; refsym[nref] = $3 }
	END {
		for (k = 1; k <= nref; k++) {
			s = refsym[k]
			if (!(s in def) || def[s] == refobj[k])
				continue
			i = idx[refobj[k]]
			j = idx[def[s]]
			if ((i, j) in via) {
				if (nvia[i, j]++ < 3)
					via[i, j] = via[i, j] " " s
				else if (nvia[i, j] == 4)
					via[i, j] = via[i, j] " ..."
			} else {
				via[i, j] = s
				nvia[i, j] = 1
			}
			r[i, j] = 1
		}
		# Floyd-Warshall: r[i, j] when i reaches j.
		for (k = 1; k <= n; k++)
			for (i = 1; i <= n; i++) {
				if (!((i, k) in r))
					continue
				for (j = 1; j <= n; j++)
					if ((k, j) in r)
						r[i, j] = 1
			}
		for (i = 1; i <= n; i++) {
			if (!((i, i) in r) || (i in done))
				continue
			line = "cycle:"
			m = 0
			for (j = 1; j <= n; j++)
				if ((i, j) in r && (j, i) in r) {
					done[j] = 1
					member[++m] = j
					line = line " " name[j]
				}
			print line
			for (a = 1; a <= m; a++)
				for (c = 1; c <= m; c++)
					if ((member[a], member[c]) in via)
						print "    " name[member[a]] \
						    " -> " name[member[c]] ": " \
						    via[member[a], member[c]]
		}
	}'
}

# Rule 1: no cycle among the objects of one part.  libmbx's objects are
# the -fPIC ones of libmbx.a and libmbx.so; mbxctl is a program of its
# own beside them.
for part in daemon client proto; do
	case $part in
	daemon)	set -- "$B"/daemon/*.o ;;
	client)	set -- "$B"/pic/client/*.o "$B"/client/mbxctl.o ;;
	proto)	set -- "$B"/proto/*.o ;;
	esac
	out=$(cycles "$@")
	if [ -n "$out" ]; then
		broken cycles "objects of $part/ that depend on each other:"
		printf '%s\n' "$out" | sed 's/^/    /'
	fi
done

# Rule 2: bodies only in proto/.
out=$(grep -nE '(^|[^A-Za-z0-9_])proto_(put|get)_[A-Za-z0-9_]*[[:space:]]*\(' \
    daemon/*.[ch] client/*.[ch])
if [ -n "$out" ]; then
	broken bodies "proto_put_*/proto_get_* outside proto/ (use proto/body.h):"
	printf '%s\n' "$out" | sed 's/^/    /'
fi

# Rule 3: only mbx_* out of libmbx, and only what mbx.h declares.
# nm -D lists the version node (LIBMBX_1) as an absolute symbol, not one
# of them, and may name each symbol with its version (mbx_open@@LIBMBX_1).
syms=$(nm -g --defined-only "$B/libmbx.a" |
    awk 'NF == 3 { print "libmbx.a", $3 }'
    nm -D --defined-only "$B/libmbx.so.2" |
    awk 'NF == 3 && $2 != "A" { sub(/@.*/, "", $3); print "libmbx.so", $3 }')
while read -r lib sym; do
	case $sym in
	'')	;;
	mbx_*)	grep -q "[^A-Za-z0-9_]$sym(" client/mbx.h ||
		    broken exports "$lib: $sym is not declared in client/mbx.h" ;;
	*)	broken exports "$lib: $sym is global and not mbx_*" ;;
	esac
done <<EOF
$syms
EOF

# Rule 4: the counters change only in daemon/account.c.  The fields are
# read from account.h (struct account, struct accounts, struct
# charge_amount, whose names held.* has), so that a new one is covered.
fields=$(awk '
	/^struct (account|accounts|charge_amount) \{/ { inside = 1; next }
	inside && /^\};/ { inside = 0 }
	inside && $1 !~ /^[*\/]/ {
		line = $0
		sub(/\/\*.*/, "", line)
		if (line !~ /;/)
			next
		sub(/[[:space:]]*(\[[^]]*\])?[[:space:]]*;.*/, "", line)
		n = split(line, w, /[[:space:]*]+/)
		print w[n]
	}' daemon/account.h | sort -u | tr '\n' '|' | sed 's/|$//')
names=$(ls daemon/*.[ch] | grep -v '^daemon/account\.[ch]$' | xargs cat | sed -n \
    's/.*struct accounts\{0,1\}[[:space:]]*\*[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' |
    sort -u | tr '\n' '|')
if [ -z "$fields" ]; then
	broken counters "no field of struct account found in daemon/account.h"
else
	ref="(^|[^A-Za-z0-9_])(${names}acct|accounts|held)(->|\.)($fields)"
	out=$(ls daemon/*.[ch] | grep -v '^daemon/account\.c$' |
	    xargs grep -nE \
	    "$ref[[:space:]]*(([-+*/%&|^]|<<|>>)?=([^=]|\$)|\+\+|--)|(\+\+|--)[[:space:]]*[A-Za-z0-9_>.-]*$ref([^A-Za-z0-9_]|\$)")
	if [ -n "$out" ]; then
		broken counters "a write to an account's counter outside daemon/account.c:"
		printf '%s\n' "$out" | sed 's/^/    /'
	fi
fi

if [ "$failed" -ne 0 ]; then
	echo "layers: broken (ARCHITECTURE.md, \"How the layers are checked\")"
	exit 1
fi
echo "layers: no cycle among objects, bodies only in proto/, only mbx_* out" \
    "of libmbx, counters only in daemon/account.c"
