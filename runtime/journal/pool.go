package journal

import (
	"math/bits"
	"sync"
)

// poolAllocator is the memory.Allocator the IPC encoder uses for its
// scratch buffers (compressed copies of every column buffer, freed as soon
// as the stream is written). Buffers are recycled by power-of-two size
// class, so steady publishing produces almost no garbage.
type poolAllocator struct {
	classes [64]sync.Pool // class c holds *[]byte of capacity 1<<c
}

func sizeClass(n int) int { return bits.Len(uint(n - 1)) }

// Allocate returns a zeroed buffer of size bytes.
func (p *poolAllocator) Allocate(size int) []byte {
	if size <= 0 {
		return []byte{}
	}
	c := sizeClass(size)
	if v := p.classes[c].Get(); v != nil {
		b := (*v.(*[]byte))[:size]
		clear(b)
		return b
	}
	return make([]byte, size, 1<<c)
}

// Reallocate grows b to size, keeping its content.
func (p *poolAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		old := len(b)
		b = b[:size]
		if size > old {
			clear(b[old:])
		}
		return b
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free recycles b if it came from Allocate.
func (p *poolAllocator) Free(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return
	}
	b = b[:0]
	p.classes[sizeClass(c)].Put(&b)
}
