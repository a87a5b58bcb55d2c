package kafkarole

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/runtime/bus"
)

// oneOwner is the group balancer of the rule engines: every partition goes
// to one member, so that a rule sees the samples of all its sources; the
// other members are standbys. The member that held the partitions keeps
// them across rebalances (it says so in its join metadata); when it is
// gone, the standby with the lowest member id takes over.
type oneOwner struct {
	owning atomic.Bool
}

var _ kafka.GroupBalancer = (*oneOwner)(nil)

const oneOwnerHolding = "holding"

func (b *oneOwner) ProtocolName() string { return "recon-one-owner" }

func (b *oneOwner) UserData() ([]byte, error) {
	if b.owning.Load() {
		return []byte(oneOwnerHolding), nil
	}
	return nil, nil
}

func (b *oneOwner) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(x, y kafka.GroupMember) int {
		hx, hy := string(x.UserData) == oneOwnerHolding, string(y.UserData) == oneOwnerHolding
		switch {
		case hx && !hy:
			return -1
		case hy && !hx:
			return 1
		}
		if x.ID < y.ID {
			return -1
		}
		if x.ID > y.ID {
			return 1
		}
		return 0
	})
	for _, m := range ms {
		out[m.ID] = map[string][]int{}
	}
	owner := out[ms[0].ID]
	for _, p := range partitions {
		owner[p.Topic] = append(owner[p.Topic], p.ID)
	}
	return out
}

// owningConsumer marks its balancer as holding the partitions once a
// message arrives, and counts what the rules role consumed.
type owningConsumer struct {
	bus.Consumer
	b *oneOwner
	r *Rules
}

func (c owningConsumer) Fetch(ctx context.Context) (bus.Message, error) {
	m, err := c.Consumer.Fetch(ctx)
	if err == nil {
		c.b.owning.Store(true)
		c.r.stats.Fetched.Add(1)
		c.r.stats.Rows.Add(uint64(m.Record.NumRows()))
		c.r.lastErr.Store(nil)
	}
	return m, err
}
