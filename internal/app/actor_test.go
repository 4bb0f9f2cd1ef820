package app

import (
	"testing"

	"vigil/alerts"
	"vigil/configs"
)

// The actor name configs reserves for tokens is the engine's: a token can
// never act under the name of the changes the service makes itself.
func TestReservedActorIsTheSystem(t *testing.T) {
	if configs.ReservedActor != alerts.System {
		t.Fatalf("configs reserves %q, the engine's changes are by %q", configs.ReservedActor, alerts.System)
	}
}
