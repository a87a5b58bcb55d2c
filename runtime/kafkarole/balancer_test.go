package kafkarole

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

// Every partition goes to one rule engine; the one holding them keeps
// them when another joins, and the lowest id takes over when it is gone.
func TestOneOwnerBalancer(t *testing.T) {
	var b oneOwner
	parts := []kafka.Partition{{Topic: "s", ID: 0}, {Topic: "s", ID: 1}, {Topic: "s", ID: 2}}
	owner := func(ms ...kafka.GroupMember) string {
		t.Helper()
		got := b.AssignGroups(ms, parts)
		var who string
		for id, a := range got {
			switch len(a["s"]) {
			case 0:
			case len(parts):
				if who != "" {
					t.Fatalf("two owners: %v", got)
				}
				who = id
			default:
				t.Fatalf("partitions split: %v", got)
			}
		}
		if len(got) != len(ms) {
			t.Fatalf("assignment %v misses members of %v", got, ms)
		}
		return who
	}
	if w := owner(kafka.GroupMember{ID: "b"}, kafka.GroupMember{ID: "a"}); w != "a" {
		t.Errorf("fresh group: owner %q, want the lowest id a", w)
	}
	holding := []byte(oneOwnerHolding)
	if w := owner(kafka.GroupMember{ID: "a"}, kafka.GroupMember{ID: "c", UserData: holding}); w != "c" {
		t.Errorf("a member joined: owner %q, want c, which holds the partitions", w)
	}
	if w := owner(kafka.GroupMember{ID: "d"}, kafka.GroupMember{ID: "b"}); w != "b" {
		t.Errorf("owner gone: %q took over, want b", w)
	}
	if u, _ := b.UserData(); u != nil {
		t.Errorf("a member that never fetched says %q", u)
	}
	b.owning.Store(true)
	if u, _ := b.UserData(); string(u) != oneOwnerHolding {
		t.Errorf("the holding member says %q", u)
	}
}
