#!/bin/sh
# Starts a system libvirtd (qemu:///system) for the libvirt end-to-end
# tests on a machine without systemd (CI), in one of two setups:
#   root   QEMU runs as root with no security driver (the default)
#   stock  Debian's own qemu.conf, as libvirt-daemon-system installs it:
#          QEMU runs as libvirt-qemu and libvirt relabels the files it
#          is given (DAC, dynamic_ownership)
# A libvirtd already running (from an earlier call) is restarted, so it
# reads the setup's qemu.conf. Prints "ok" when `virsh -c qemu:///system`
# answers, else fails. Changes system configuration: for CI and
# throw-away machines only.
set -eu
mode=${1:-root}
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
conf=/etc/libvirt/qemu.conf
# libvirt-daemon-system creates Debian's libvirt-qemu user, the kvm and
# libvirt groups and directories; confold keeps a qemu.conf this script
# wrote earlier instead of asking.
if ! dpkg-query -W -f='${Status}' libvirt-daemon-system 2>/dev/null | grep -q "ok installed"; then
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		libvirt-daemon-system libvirt-daemon-driver-qemu >/dev/null
fi
case $mode in
root)
	$SUDO sh -c "cat > $conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
CONF
	;;
stock)
	# The package's own file back, byte for byte (dpkg restores a missing
	# conffile on reinstall with --force-confmiss).
	$SUDO rm -f $conf
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --reinstall --no-install-recommends \
		-o Dpkg::Options::=--force-confmiss libvirt-daemon-system >/dev/null
	;;
*)
	echo "libvirt-setup: unknown setup $mode (root or stock)" >&2
	exit 2
	;;
esac
$SUDO mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/qemu
pid=/var/run/libvirtd.pid
if [ -f $pid ] && $SUDO kill "$(cat $pid)" 2>/dev/null; then
	for _ in $(seq 1 50); do
		$SUDO kill -0 "$(cat $pid 2>/dev/null)" 2>/dev/null || break
		sleep 0.2
	done
fi
pgrep -x virtlogd >/dev/null || $SUDO virtlogd -d
$SUDO libvirtd -d
for _ in $(seq 1 50); do
	if virsh -c qemu:///system version >/dev/null 2>&1; then
		echo ok
		exit 0
	fi
	sleep 0.2
done
echo "libvirt-setup: libvirtd ($mode) did not answer on qemu:///system" >&2
exit 1
