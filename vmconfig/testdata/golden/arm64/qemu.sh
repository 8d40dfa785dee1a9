#!/bin/sh
# Boots c2vm-0123456789ab (arm64) with QEMU: the container's output on this
# terminal, the VM powers off when it exits; its last console line is
# C2VM_EXIT_STATUS=<n>. Written by c2vm; runs from any directory.
#   C2VM_ACCEL=auto|kvm|tcg  accelerator (auto: KVM only when it is this
#                            host's arch and a probe VM really runs)
#   C2VM_MEMORY, C2VM_CPUS   override memory (MiB) and CPUs
#   C2VM_APPEND              extra kernel arguments (e.g. c2vm.debug=1)
#   C2VM_AGENT_SOCKET        the exec agent's unix socket, no commas (default
#                            $DIR/agent.sock): c2vm exec --socket PATH -- CMD
#   extra arguments are passed to QEMU.
# Network: QEMU user mode (the guest is 10.0.2.15, the host 10.0.2.2);
# published ports (IP:HOST:GUEST/proto, as docker -p): 127.0.0.1:18080:8080/tcp 0.0.0.0:5353:53/udp.
# Data disks, written by the VM (keep them across upgrades): data-0.img data-1.img.
set -eu
DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
accel=${C2VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
	accel=tcg
	if [ "$(uname -m)" = "aarch64" ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		# /dev/kvm can exist and still hang guests: boot the kernel with KVM
		# for up to 5 seconds and use KVM only if it prints its banner. The
		# answer is kept for this host boot, shared with c2vm run.
		cache=${C2VM_CACHE:-${HOME:-/nonexistent}/.cache/c2vm}/kvm-probe-arm64
		boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || :)
		if [ -n "$boot" ] && [ -r "$cache" ] && read -r id cached <"$cache" && [ "$id" = "$boot" ] &&
			{ [ "$cached" = kvm ] || [ "$cached" = tcg ]; }; then
			accel=$cached
		else
			if timeout 5 qemu-system-aarch64 -M virt -cpu max -accel kvm -m 128 -nographic -no-reboot -nic none -kernel "$DIR/kernel" -append "console=ttyAMA0 panic=-1 rdinit=/nonexistent" 2>/dev/null |
				grep -q "Linux version"; then
				accel=kvm
			fi
			if [ -n "$boot" ]; then
				{ mkdir -p "$(dirname -- "$cache")" && echo "$boot $accel" >"$cache"; } 2>/dev/null || :
			fi
		fi
	fi
fi
cpu=max
if [ "$accel" = tcg ]; then
	cpu=max,pauth-impdef=on # the same CPU, faster to emulate
fi
exec qemu-system-aarch64 \
	-M virt \
	-cpu "$cpu" \
	-accel "$accel" \
	-m "${C2VM_MEMORY:-256}" \
	-smp "${C2VM_CPUS:-2}" \
	-nographic \
	-no-reboot \
	-netdev user,id=net0,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=udp:0.0.0.0:5353-:53 \
	-device virtio-net-pci,netdev=net0 \
	-kernel "$DIR/kernel" \
	-initrd "$DIR/initramfs.img" \
	-drive "file=$DIR/rootfs.img,if=virtio,format=raw,readonly=on" \
	-drive "file=$DIR/data-0.img,if=virtio,format=raw" \
	-drive "file=$DIR/data-1.img,if=virtio,format=raw" \
	-append "console=ttyAMA0 panic=-1 quiet${C2VM_APPEND:+ $C2VM_APPEND}" \
	-device virtio-serial-pci,id=c2vm-serial \
	-chardev "socket,id=c2vm-agent,path=${C2VM_AGENT_SOCKET:-$DIR/agent.sock},server=on,wait=off" \
	-device virtserialport,bus=c2vm-serial.0,chardev=c2vm-agent,name=org.c2vm.agent.0 \
	"$@"
