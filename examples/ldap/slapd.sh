#!/usr/bin/env bash
# A throwaway OpenLDAP for examples/ldap/liaison.yaml: directory.ldif loaded into
# state/slapd/ and served on ldap://127.0.0.1:3890 in the foreground (Ctrl-C
# stops it), with syncprov (session log, reload hint) for RFC 4533 changes reads.
# Needs Debian's slapd and ldap-utils. Then, in another terminal:
#   liaison --config examples/ldap/liaison.yaml sync --once
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$here/state/slapd"
rm -rf "$dir" && mkdir -p "$dir/db"
cat > "$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
pidfile $dir/slapd.pid
database mdb
maxsize 104857600
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw admin-change-me
directory $dir/db
index objectClass,entryUUID,entryCSN eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="cn=liaison,dc=example,dc=com" read by * none
limits dn.exact="cn=liaison,dc=example,dc=com" size=unlimited size.prtotal=unlimited
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
syncprov-reloadhint TRUE
CONF
slapadd -q -f "$dir/slapd.conf" -l "$here/directory.ldif"
echo "slapd on ldap://127.0.0.1:3890 (Ctrl-C stops it)" >&2
exec /usr/sbin/slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:3890/" -d 0
