package lifecycle

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestShutdownWaitsForRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New("svc")
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		returned := make(chan struct{})
		go func() { // Run: works until stopped, then takes 1s to finish
			defer close(returned)
			defer l.Done()
			<-l.Stop()
			time.Sleep(time.Second)
		}()
		if err := l.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		select {
		case <-returned:
		default:
			t.Fatal("Shutdown returned before Run")
		}
		if err := l.Shutdown(context.Background()); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
	})
}

func TestShutdownBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New("svc")
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		go func() {
			defer l.Done()
			<-release // a Run that does not stop by itself
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := l.Shutdown(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
		}
		if !l.Stopping() {
			t.Error("Stopping is false after Shutdown")
		}
		close(release)
		synctest.Wait()
	})
}

func TestShutdownBeforeRun(t *testing.T) {
	l := New("svc")
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Run: %v", err)
	}
	if !l.Stopping() {
		t.Fatal("Stopping is false: a later Run would not return at once")
	}
}

func TestRunRunsOnce(t *testing.T) {
	l := New("svc")
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start = %v, want ErrRunning", err)
	}
}
