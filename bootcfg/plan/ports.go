package plan

// Port is one of the image's EXPOSEd ports, validated (1–65535, tcp or
// udp): image config keys are untrusted and end up in hypervisor configs.
type Port struct {
	Port  uint16 `json:"port"`
	Proto string `json:"proto"` // "tcp" or "udp"
}

// Forward publishes a guest port on the host, as Docker's
// -p [IP:]HOST:GUEST[/proto]: user-mode networking's hostfwd.
type Forward struct {
	HostIP    string `json:"hostIP"` // "127.0.0.1" unless given
	HostPort  uint16 `json:"hostPort"`
	GuestPort uint16 `json:"guestPort"`
	Proto     string `json:"proto"` // "tcp" or "udp"
}
