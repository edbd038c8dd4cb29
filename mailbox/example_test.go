package mailbox_test

import (
	"fmt"

	"github.com/shockwave-go/shockwave/mailbox"
)

// A session's mailbox: senders push outbound frames, the writer drains them in
// batches, and a sender that finds the mailbox full drops the oldest frame.
func Example() {
	q := mailbox.New[string](3) // rounded up to 4
	fmt.Println("capacity:", q.Cap())

	for _, msg := range []string{"hello", "world", "how", "are", "you"} {
		for !q.TryPush(msg) {
			old, _ := q.Pop() // drop-oldest policy
			fmt.Println("dropped:", old)
		}
	}
	fmt.Println("queued:", q.Len())

	batch := make([]string, 0, 2) // the writer sends up to two frames at a time
	for {
		batch = q.PopBatch(batch[:0])
		if len(batch) == 0 {
			break
		}
		fmt.Println("write:", batch)
	}
	// Output:
	// capacity: 4
	// dropped: hello
	// queued: 4
	// write: [world how]
	// write: [are you]
}
