#!/usr/bin/env bash
# Make a minimal busybox root filesystem in DIR from Debian's busybox-static:
# /bin/busybox, one symlink per applet, /etc/passwd and /etc/group, the usual dirs.
# Usage: scripts/busybox-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: busybox-rootfs.sh DIR}
bb=$(command -v busybox || true)
[ -n "$bb" ] || { echo "busybox-static is not installed (make setup)" >&2; exit 1; }
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,home,proc,sys,dev,run}
chmod 1777 "$dir/tmp" "$dir/var/tmp"
chmod 700 "$dir/root"
install -m 0755 "$bb" "$dir/bin/busybox"
"$bb" --list-full | while read -r applet; do
  [ "$applet" = "bin/busybox" ] && continue
  [ -e "$dir/$applet" ] || ln -s /bin/busybox "$dir/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
wheel:x:10:root
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
G
echo "127.0.0.1 localhost" > "$dir/etc/hosts"
: > "$dir/etc/resolv.conf"
