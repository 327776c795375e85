#!/usr/bin/env bash
# `make demo`: gantry end to end, in a throwaway root so the user's store is untouched.
#   1. a busybox root filesystem from Debian's busybox-static, imported as busybox:latest
#   2. the main job: gantry build of a small web app on it (cold, then fully cached),
#      gantry run -d -p of the result, curl, logs, stop, rm
#   3. images / inspect / history, system df
#   4. save, then podman load + podman run of the archive (private podman storage)
#   5. load of the same archive into a second gantry root, checked with system check
# Every step prints the command it runs. DEMO_DIR (default: a new dir on /dev/shm) holds it all.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
gantry="$here/.venv/bin/gantry"
base=/dev/shm; [ -d "$base" ] || base=${TMPDIR:-/tmp}
demo=${DEMO_DIR:-$(mktemp -d "$base/gantry-demo-XXXXXX")}
export GANTRY_ROOT="$demo/root"
podman=(podman --root "$demo/podman/root" --runroot "$demo/podman/run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file)

cleanup() {
  "$gantry" rm -f demo-web >/dev/null 2>&1 || true
  "${podman[@]}" rm -af >/dev/null 2>&1 || true
  if [ -z "${KEEP_DEMO:-}" ]; then rm -rf "$demo"; else echo "demo files kept in $demo"; fi
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

step "a busybox root filesystem (busybox-static, applet symlinks, /etc/passwd, /etc/group)"
run "$here/scripts/busybox-rootfs.sh" "$demo/rootfs"
run tar -C "$demo/rootfs" -cf "$demo/busybox-rootfs.tar" .

step "import it as busybox:latest (GANTRY_ROOT=$GANTRY_ROOT)"
run "$gantry" import --change 'CMD ["sh"]' "$demo/busybox-rootfs.tar" busybox:latest

step "the main job: build a web app image on it"
mkdir -p "$demo/app"
cat > "$demo/app/Dockerfile" <<'DOCKERFILE'
FROM busybox:latest
WORKDIR /www
COPY index.html ./
RUN echo 'web:x:1000:1000:web:/www:/bin/false' >> /etc/passwd && echo 'web:x:1000:' >> /etc/group && chown -R web:web /www
USER web
EXPOSE 8080
CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
DOCKERFILE
echo '<h1>hello from a gantry-built image</h1>' > "$demo/app/index.html"
printf '.git\n*.log\n' > "$demo/app/.dockerignore"
run cat "$demo/app/Dockerfile"
run "$gantry" build --progress plain -t web:1 "$demo/app"
step "build it again: every step comes from the cache"
run time "$gantry" build -t web:1 "$demo/app"

step "run it with a published port and talk to it"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run "$gantry" run -d --name demo-web -p "127.0.0.1:$port:8080" web:1
run "$gantry" ps
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
run curl -fsS "http://127.0.0.1:$port/"
run "$gantry" logs demo-web
run "$gantry" stop demo-web
run "$gantry" rm demo-web

step "look at the images"
run "$gantry" images
run "$gantry" inspect --format '{{.Id}} {{.Config.User}} {{json .Config.Cmd}}' web:1
run "$gantry" history web:1
run "$gantry" system df

step "save it, then load and run it with podman"
run "$gantry" save -o "$demo/web.tar" web:1
run tar -tvf "$demo/web.tar"
run "${podman[@]}" load -i "$demo/web.tar"
run "${podman[@]}" run --rm --net=none web:1 sh -c 'echo "podman runs a gantry image as $(id -un): $(cat /www/index.html)"'

step "and back: load the same archive into a second gantry root"
run env GANTRY_ROOT="$demo/root2" "$gantry" load -i "$demo/web.tar"
run env GANTRY_ROOT="$demo/root2" "$gantry" images --no-trunc
run env GANTRY_ROOT="$demo/root2" "$gantry" system check
