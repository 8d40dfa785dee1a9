#!/bin/sh
# Starts a root libvirtd for the libvirt end-to-end test on a machine
# without systemd (CI): QEMU runs as root with no security driver, so the
# test's files need no relabelling. Prints "ok" when `virsh -c
# qemu:///system` answers. Changes system configuration: for CI and
# throw-away machines only.
set -eu
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! dpkg-query -W -f='${Status}' libvirt-daemon-driver-qemu 2>/dev/null | grep -q "ok installed"; then
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		libvirt-daemon libvirt-daemon-driver-qemu >/dev/null
fi
getent group kvm >/dev/null || $SUDO groupadd -r kvm
getent group libvirt-qemu >/dev/null || $SUDO groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || $SUDO useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
$SUDO mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/qemu
$SUDO sh -c 'cat > /etc/libvirt/qemu.conf' <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
CONF
pgrep -x virtlogd >/dev/null || $SUDO virtlogd -d
pgrep -x libvirtd >/dev/null || $SUDO libvirtd -d
for i in $(seq 1 50); do
	if virsh -c qemu:///system version >/dev/null 2>&1; then
		echo ok
		exit 0
	fi
	sleep 0.2
done
echo "libvirt-setup: libvirtd did not answer" >&2
exit 1
