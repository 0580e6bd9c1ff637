package limits

import (
	"context"
	"testing"
	"time"
)

func TestLocalKeepsSIDsApart(t *testing.T) {
	l := NewLocal(1, 1) // one call per second per SID
	ctx := context.Background()
	if err := l.Wait(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// "b" has its own bucket: it must not wait for "a"'s token.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := l.Wait(short, "b"); err != nil {
		t.Fatalf("first call for another SID waited: %v", err)
	}
	// "a" has used its token; a second call cannot fit in 200ms.
	short2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := l.Wait(short2, "a"); err == nil {
		t.Fatal("second call for the same SID within the second was let through")
	}
}

func TestLocalHonoursCancel(t *testing.T) {
	l := NewLocal(0.001, 1)
	ctx, cancel := context.WithCancel(context.Background())
	_ = l.Wait(ctx, "a")
	cancel()
	if err := l.Wait(ctx, "a"); err == nil {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
}
