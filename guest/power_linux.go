package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// keyPower is KEY_POWER (include/uapi/linux/input-event-codes.h).
const keyPower = 116

// watchPowerButton opens every source of the VM's power button and calls
// press on each push: the input devices that report KEY_POWER (x86's ACPI
// button through evdev), and the GPIO line a device tree's gpio-keys node
// maps to KEY_POWER (QEMU's arm64 virt machine; Debian's cloud kernel has
// no gpio-keys driver, so the line is read through the GPIO chardev). It
// runs before the switch to the container's root, where /sys/firmware is
// masked; the open descriptors keep working after it.
func watchPowerButton(press func()) (sources []string, err error) {
	var errs []error
	evs, _ := filepath.Glob("/dev/input/event*")
	for _, p := range evs {
		if watchEvdev(p, press) == nil {
			sources = append(sources, p)
		}
	}
	chip, line, err := gpioPowerKey()
	if err == nil {
		if err = watchGPIO(chip, line, press); err == nil {
			sources = append(sources, fmt.Sprintf("%s line %d", chip, line))
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(sources) == 0 {
		errs = append(errs, errors.New("no power button found (no ACPI button input device, no gpio-keys KEY_POWER line)"))
	}
	return sources, errors.Join(errs...)
}

// watchEvdev reads input_event records (struct timeval, __u16 type, __u16
// code, __s32 value: 24 bytes on 64-bit Linux) from an evdev device.
func watchEvdev(p string, press func()) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	go func() {
		defer f.Close()
		ev := make([]byte, 24)
		for {
			if _, err := readFull(f, ev); err != nil {
				return
			}
			typ := binary.NativeEndian.Uint16(ev[16:])
			code := binary.NativeEndian.Uint16(ev[18:])
			value := int32(binary.NativeEndian.Uint32(ev[20:]))
			if typ == unix.EV_KEY && code == keyPower && value == 1 {
				press()
			}
		}
	}()
	return nil
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// gpioPowerKey finds, in the device tree, the gpio-keys entry whose
// linux,code is KEY_POWER, and the GPIO chip device and line it names.
func gpioPowerKey() (string, uint32, error) {
	const dt = "/sys/firmware/devicetree/base"
	nodes, _ := filepath.Glob(dt + "/*/*/linux,code")
	for _, codeFile := range nodes {
		node := filepath.Dir(codeFile)
		compat, _ := os.ReadFile(filepath.Join(filepath.Dir(node), "compatible"))
		if !strings.Contains(string(compat), "gpio-keys") {
			continue
		}
		code, err := os.ReadFile(codeFile)
		if err != nil || len(code) != 4 || binary.BigEndian.Uint32(code) != keyPower {
			continue
		}
		gpios, err := os.ReadFile(filepath.Join(node, "gpios"))
		if err != nil || len(gpios) < 8 {
			continue
		}
		phandle, line := binary.BigEndian.Uint32(gpios), binary.BigEndian.Uint32(gpios[4:])
		chip, err := gpioChipByPhandle(phandle)
		if err != nil {
			return "", 0, err
		}
		return chip, line, nil
	}
	return "", 0, os.ErrNotExist
}

func gpioChipByPhandle(phandle uint32) (string, error) {
	chips, _ := filepath.Glob("/sys/bus/gpio/devices/gpiochip*")
	for _, c := range chips {
		b, err := os.ReadFile(filepath.Join(c, "of_node", "phandle"))
		if err == nil && len(b) == 4 && binary.BigEndian.Uint32(b) == phandle {
			return "/dev/" + filepath.Base(c), nil
		}
	}
	return "", fmt.Errorf("power button: no GPIO chip with phandle %d", phandle)
}

// The GPIO character device's v2 line request (include/uapi/linux/gpio.h).
type gpioV2LineRequest struct {
	Offsets         [64]uint32
	Consumer        [32]byte
	Flags           uint64 // config.flags
	NumAttrs        uint32
	_               [5]uint32
	Attrs           [10][3]uint64 // config.attrs: {id, padding, value}, mask
	NumLines        uint32
	EventBufferSize uint32
	_               [5]uint32
	Fd              int32
}

const (
	gpioV2LineFlagInput      = 1 << 2
	gpioV2LineFlagEdgeRising = 1 << 4
	// GPIO_V2_GET_LINE_IOCTL: _IOWR(0xB4, 0x07, struct gpio_v2_line_request).
	gpioV2GetLineIoctl = 3<<30 | uint(unsafe.Sizeof(gpioV2LineRequest{}))<<16 | 0xB4<<8 | 0x07
	gpioV2EventSize    = 48 // struct gpio_v2_line_event
)

// watchGPIO requests the line as an input with rising-edge events and
// calls press on each event.
func watchGPIO(chip string, line uint32, press func()) error {
	f, err := os.Open(chip)
	if err != nil {
		return err
	}
	defer f.Close()
	var req gpioV2LineRequest
	req.Offsets[0] = line
	copy(req.Consumer[:], "c2vm-init power button")
	req.Flags = gpioV2LineFlagInput | gpioV2LineFlagEdgeRising
	req.NumLines = 1
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(gpioV2GetLineIoctl), uintptr(unsafe.Pointer(&req))); e != 0 {
		return fmt.Errorf("power button: requesting %s line %d: %w", chip, line, e)
	}
	lf := os.NewFile(uintptr(req.Fd), chip+"-line")
	go func() {
		defer lf.Close()
		ev := make([]byte, gpioV2EventSize)
		for {
			if _, err := readFull(lf, ev); err != nil {
				return
			}
			press()
		}
	}()
	return nil
}
