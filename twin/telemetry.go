package twin

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
)

// FollowTelemetry keeps reg current from the gateways' signed reports. A
// report is taken only when its subject, twin and actuator agree and it is
// signed by the twin's gateway key; onState, when set, sees each accepted
// report (the realm pushes them to consoles).
func FollowTelemetry(nc *nats.Conn, prefix string, reg *Registry, gatewayKey func(twinID string) (common.Address, bool), onState func(twinID, actuatorID string, s State)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(AllStateSubjects(prefix), func(m *nats.Msg) {
		// <prefix>.twin.<twin>.state.<actuator>
		parts := strings.Split(strings.TrimPrefix(m.Subject, prefix+"."), ".")
		if len(parts) != 4 {
			return
		}
		st, err := DecodeSignedTelemetry(m.Data)
		if err != nil || st.Telemetry.Twin != parts[1] || st.Telemetry.Actuator != parts[3] {
			return
		}
		want, ok := gatewayKey(parts[1])
		if signer, err := st.Signer(); !ok || err != nil || signer != want {
			return
		}
		s := st.Telemetry.State()
		reg.SetState(parts[1], parts[3], s)
		if onState != nil {
			onState(parts[1], parts[3], s)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("twin: follow telemetry: %w", err)
	}
	return sub, nil
}
