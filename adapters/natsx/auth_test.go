package natsx

// Each kind of NATS credentials windrow accepts (user/password, token, NKey
// seed file, JWT creds file, TLS with a CA and mutual TLS), against a real
// in-process server on a random loopback port: the right credentials work,
// wrong ones fail fast with an error, and no error or log form of the
// configuration shows a password, token, seed or private key.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/windrow/windrow/internal/testnats"
)

// connectBound is how long a Connect may take before the test calls it
// hung: a first connection that fails must fail, not retry forever.
const connectBound = 15 * time.Second

// runAuthServer runs a server without JetStream (these tests only need core
// NATS) with opt applied.
func runAuthServer(t *testing.T, opt func(*server.Options)) *server.Server {
	t.Helper()
	return testnats.RunServer(t, func(o *server.Options) {
		o.JetStream = false
		opt(o)
	})
}

// connectWithin runs Connect(cfg, nil) and fails the test if it does not
// return within connectBound. A returned connection is closed at the end of
// the test.
func connectWithin(t *testing.T, cfg ClientConfig) (*nats.Conn, error) {
	t.Helper()
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := Connect(cfg, nil)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.nc != nil {
			t.Cleanup(r.nc.Close)
		}
		return r.nc, r.err
	case <-time.After(connectBound):
		t.Fatalf("Connect(%s) did not return within %s", cfg, connectBound)
		return nil, nil
	}
}

// mustConnect connects with cfg and checks that messages flow.
func mustConnect(t *testing.T, cfg ClientConfig) *nats.Conn {
	t.Helper()
	nc, err := connectWithin(t, cfg)
	if err != nil {
		t.Fatalf("Connect(%s): %v", cfg, err)
	}
	roundTrip(t, nc)
	return nc
}

// roundTrip publishes a message and receives it on the same connection.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync("natsx.auth.test")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Unsubscribe()
	if err := nc.Publish("natsx.auth.test", []byte("ping")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if string(msg.Data) != "ping" {
		t.Fatalf("received %q, want ping", msg.Data)
	}
}

// mustFail connects with cfg, which must fail, and checks that the error
// shows none of secrets. It returns the error.
func mustFail(t *testing.T, cfg ClientConfig, secrets ...string) error {
	t.Helper()
	nc, err := connectWithin(t, cfg)
	if err == nil {
		t.Fatalf("Connect(%s) succeeded (connected to %s), want an error", cfg, nc.ConnectedUrlRedacted())
	}
	assertNoSecret(t, "Connect error", err.Error(), secrets...)
	assertNoSecret(t, "Connect error (%+v)", fmt.Sprintf("%+v", err), secrets...)
	return err
}

// assertNoSecret fails the test if text contains any of secrets.
func assertNoSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("assertNoSecret: empty secret")
		}
		if strings.Contains(text, s) {
			t.Errorf("%s shows a secret (%q): %s", what, s, text)
		}
	}
}

// assertMentions fails the test unless err's text contains one of words
// (case-insensitive).
func assertMentions(t *testing.T, err error, words ...string) {
	t.Helper()
	text := strings.ToLower(err.Error())
	for _, w := range words {
		if strings.Contains(text, strings.ToLower(w)) {
			return
		}
	}
	t.Errorf("error %q mentions none of %q", err, words)
}

// writeSecret writes a file that only its owner can read, as credentials
// files should be.
func writeSecret(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newUserSeed makes a user NKey: its public key and its seed.
func newUserSeed(t *testing.T) (pub string, seed []byte) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err = kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return pub, seed
}

func TestConnectWithUserPassword(t *testing.T) {
	srv := runAuthServer(t, func(o *server.Options) { o.Username, o.Password = "alice", secretPassword })
	mustConnect(t, ClientConfig{URL: srv.ClientURL(), User: "alice", Password: secretPassword})

	wrong := "wrong-" + secretPassword
	err := mustFail(t, ClientConfig{URL: srv.ClientURL(), User: "alice", Password: wrong}, secretPassword, wrong)
	assertMentions(t, err, "authorization")
	if !strings.Contains(err.Error(), srv.Addr().String()) {
		t.Errorf("error %q does not name the server %s", err, srv.Addr())
	}
	mustFail(t, ClientConfig{URL: srv.ClientURL()}, secretPassword)
}

func TestConnectWithToken(t *testing.T) {
	srv := runAuthServer(t, func(o *server.Options) { o.Authorization = secretToken })
	mustConnect(t, ClientConfig{URL: srv.ClientURL(), Token: secretToken})

	wrong := "wrong-" + secretToken
	err := mustFail(t, ClientConfig{URL: srv.ClientURL(), Token: wrong}, secretToken, wrong)
	assertMentions(t, err, "authorization")
	mustFail(t, ClientConfig{URL: srv.ClientURL()}, secretToken)
}

// TestConnectWithCredentialsInURL: nats://user:password@host and
// nats://token@host work, and what windrow reports of the connection
// (String, the redacted connected URL) does not show them.
func TestConnectWithCredentialsInURL(t *testing.T) {
	t.Run("user and password", func(t *testing.T) {
		srv := runAuthServer(t, func(o *server.Options) { o.Username, o.Password = "alice", secretPassword })
		u := "nats://alice:" + secretPassword + "@" + srv.Addr().String()
		nc := mustConnect(t, ClientConfig{URL: u})
		assertConnectedURL(t, nc, srv, secretPassword)
		assertNoSecret(t, "String", ClientConfig{URL: u}.String(), secretPassword)
		bad := "nats://alice:wrong-" + secretPassword + "@" + srv.Addr().String()
		assertMentions(t, mustFail(t, ClientConfig{URL: bad}, secretPassword), "authorization")
	})
	t.Run("token", func(t *testing.T) {
		srv := runAuthServer(t, func(o *server.Options) { o.Authorization = secretToken })
		u := "nats://" + secretToken + "@" + srv.Addr().String()
		nc := mustConnect(t, ClientConfig{URL: u})
		// nats.go's own ConnectedUrlRedacted shows this token.
		assertConnectedURL(t, nc, srv, secretToken)
		assertNoSecret(t, "String", ClientConfig{URL: u}.String(), secretToken)
	})
	t.Run("password with special characters", func(t *testing.T) {
		// A password a user could well have; in a URL it must be
		// percent-encoded, which url.UserPassword does.
		const pw = "p/w#q?r%s 5ecr3t"
		srv := runAuthServer(t, func(o *server.Options) { o.Username, o.Password = "alice", pw })
		enc := (&url.URL{Scheme: "nats", User: url.UserPassword("alice", pw), Host: srv.Addr().String()}).String()
		nc := mustConnect(t, ClientConfig{URL: enc})
		assertConnectedURL(t, nc, srv, "5ecr3t")
		assertNoSecret(t, "String", ClientConfig{URL: enc}.String(), "5ecr3t", url.QueryEscape(pw))
	})
}

// assertConnectedURL checks that ConnectedURL names srv but not secret.
func assertConnectedURL(t *testing.T, nc *nats.Conn, srv *server.Server, secret string) {
	t.Helper()
	got := ConnectedURL(nc)
	assertNoSecret(t, "ConnectedURL", got, secret)
	if !strings.Contains(got, srv.Addr().String()) {
		t.Errorf("ConnectedURL = %q, want it to name %s", got, srv.Addr())
	}
}

// TestConnectMalformedURLHidesCredentials: url.Parse's error quotes the URL,
// and nats.go returns it as is; a password with an unescaped special
// character must still not end up in the error.
func TestConnectMalformedURLHidesCredentials(t *testing.T) {
	for _, u := range []string{
		"nats://alice:pw/5ecr3t@127.0.0.1:4222",
		"nats://alice:pw#5ecr3t@127.0.0.1:4222",
		"nats://alice:pw?5ecr3t@127.0.0.1:4222",
		"nats://alice:pw 5ecr3t@127.0.0.1:4222",
		"nats://alice:pw%zz5ecr3t@127.0.0.1:4222",
		"nats://alice:pw\x7f5ecr3t@127.0.0.1:4222",
		"nats://127.0.0.1:4222, nats://alice:pw/5ecr3t@127.0.0.1:4223",
		"alice:pw/5ecr3t@127.0.0.1:4222",
		// Parses, but as host "tok" and path "/en...": the token would
		// be looked up in DNS and show in the dial error.
		"nats://tok/en-5ecr3t@127.0.0.1:4222",
		"nats://tok?en-5ecr3t@127.0.0.1:4222",
	} {
		t.Run(u, func(t *testing.T) {
			err := mustFail(t, ClientConfig{URL: u}, "5ecr3t", "pw")
			assertMentions(t, err, "invalid nats url")
			assertNoSecret(t, "String", ClientConfig{URL: u}.String(), "5ecr3t", "pw")
		})
	}
	// A malformed URL without credentials is named in the error.
	err := mustFail(t, ClientConfig{URL: "nats://127.0.0.1:port"})
	if !strings.Contains(err.Error(), "nats://127.0.0.1:port") {
		t.Errorf("error %q does not name the malformed URL", err)
	}
}

func TestConnectWithNKey(t *testing.T) {
	pub, seed := newUserSeed(t)
	srv := runAuthServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	good := writeSecret(t, "user.nk", append(seed, '\n'))
	mustConnect(t, ClientConfig{URL: srv.ClientURL(), NKeySeed: good})

	_, otherSeed := newUserSeed(t)
	secrets := []string{string(seed), string(otherSeed)}
	t.Run("unknown nkey", func(t *testing.T) {
		other := writeSecret(t, "other.nk", otherSeed)
		assertMentions(t, mustFail(t, ClientConfig{URL: srv.ClientURL(), NKeySeed: other}, secrets...), "authorization")
	})
	t.Run("no credentials", func(t *testing.T) {
		assertMentions(t, mustFail(t, ClientConfig{URL: srv.ClientURL()}, secrets...), "authorization")
	})
	t.Run("account seed", func(t *testing.T) {
		akp, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		aseed, _ := akp.Seed()
		path := writeSecret(t, "account.nk", aseed)
		err = mustFail(t, ClientConfig{URL: srv.ClientURL(), NKeySeed: path}, string(aseed))
		assertMentions(t, err, "seed")
	})
	t.Run("not a seed", func(t *testing.T) {
		path := writeSecret(t, "garbage.nk", []byte("garbage-5ecr3t\n"))
		err := mustFail(t, ClientConfig{URL: srv.ClientURL(), NKeySeed: path}, "5ecr3t")
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the seed file", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.nk")
		err := mustFail(t, ClientConfig{URL: srv.ClientURL(), NKeySeed: path})
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the seed file", err)
		}
	})
}

// operatorChain is a trusted operator with one account, as nsc would make.
type operatorChain struct {
	operator *jwt.OperatorClaims
	account  nkeys.KeyPair
	resolver *server.MemAccResolver
}

func newOperatorChain(t *testing.T) *operatorChain {
	t.Helper()
	okp, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "windrow test operator"
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	opc, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	akp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	apub, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "windrow"
	ajwt, err := ac.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	return &operatorChain{operator: opc, account: akp, resolver: resolver}
}

// userCreds writes a creds file for a new user signed by signer; edit may
// change the claims. otherSeed, when set, replaces the user's seed in the
// file. It returns the path and the seed written.
func userCreds(t *testing.T, signer nkeys.KeyPair, edit func(*jwt.UserClaims), otherSeed []byte) (string, []byte) {
	t.Helper()
	pub, seed := newUserSeed(t)
	uc := jwt.NewUserClaims(pub)
	uc.Name = "windrow test user"
	if edit != nil {
		edit(uc)
	}
	ujwt, err := uc.Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	if otherSeed != nil {
		// FormatUserConfig refuses a seed that does not match the JWT.
		creds = bytes.Replace(creds, seed, otherSeed, 1)
		seed = otherSeed
	}
	return writeSecret(t, "user.creds", creds), seed
}

func TestConnectWithCredsFile(t *testing.T) {
	chain := newOperatorChain(t)
	srv := runAuthServer(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{chain.operator}
		o.AccountResolver = chain.resolver
	})
	creds, seed := userCreds(t, chain.account, nil, nil)
	mustConnect(t, ClientConfig{URL: srv.ClientURL(), Creds: creds})

	t.Run("expired user", func(t *testing.T) {
		path, s := userCreds(t, chain.account, func(uc *jwt.UserClaims) {
			uc.IssuedAt = time.Now().Add(-2 * time.Hour).Unix()
			uc.Expires = time.Now().Add(-time.Hour).Unix()
		}, nil)
		err := mustFail(t, ClientConfig{URL: srv.ClientURL(), Creds: path}, string(s), string(seed))
		assertMentions(t, err, "expired", "authorization")
	})
	t.Run("unknown account", func(t *testing.T) {
		stranger, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		path, s := userCreds(t, stranger, nil, nil)
		err = mustFail(t, ClientConfig{URL: srv.ClientURL(), Creds: path}, string(s), string(seed))
		assertMentions(t, err, "authorization")
	})
	t.Run("seed does not match the jwt", func(t *testing.T) {
		_, otherSeed := newUserSeed(t)
		path, _ := userCreds(t, chain.account, nil, otherSeed)
		err := mustFail(t, ClientConfig{URL: srv.ClientURL(), Creds: path}, string(otherSeed), string(seed))
		assertMentions(t, err, "authorization")
	})
	t.Run("not a creds file", func(t *testing.T) {
		path := writeSecret(t, "garbage.creds", []byte("garbage-5ecr3t\n"))
		mustFail(t, ClientConfig{URL: srv.ClientURL(), Creds: path}, "5ecr3t")
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.creds")
		mustFail(t, ClientConfig{URL: srv.ClientURL(), Creds: path}, string(seed))
	})
	t.Run("no credentials", func(t *testing.T) {
		assertMentions(t, mustFail(t, ClientConfig{URL: srv.ClientURL()}, string(seed)), "authorization")
	})
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	// keyBodies are lines from the middle of the private key PEMs.
	keyBodies []string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "windrow test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{caFile: write("ca.pem", "CERTIFICATE", caDER, 0o644)}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, name string) (certFile, keyFile string) {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		keyFile = write(name+"-key.pem", "PRIVATE KEY", keyDER, 0o600)
		lines := strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), "\n")
		p.keyBodies = append(p.keyBodies, lines[1])
		return write(name+"-cert.pem", "CERTIFICATE", der, 0o644), keyFile
	}
	p.serverCert, p.serverKey = leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, "server")
	p.clientCert, p.clientKey = leaf(3, "windrow client", x509.ExtKeyUsageClientAuth, "client")
	return p
}

// runTLSServer runs a server that requires TLS; with verify it also
// requires a client certificate signed by p's CA.
func runTLSServer(t *testing.T, p *testPKI, verify bool) *server.Server {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.caFile, Verify: verify,
	})
	if err != nil {
		t.Fatalf("server tls config: %v", err)
	}
	return runAuthServer(t, func(o *server.Options) {
		o.TLSConfig = tc
		o.TLSVerify = verify
		o.TLSTimeout = 5
	})
}

func TestConnectWithTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := runTLSServer(t, pki, false)
	addr := srv.Addr().String()
	for _, u := range []string{"nats://" + addr, "tls://" + addr} {
		nc := mustConnect(t, ClientConfig{URL: u, CAFile: pki.caFile})
		if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
			t.Errorf("%s: connection is not TLS: %v", u, err)
		}
	}

	t.Run("no CA", func(t *testing.T) {
		err := mustFail(t, ClientConfig{URL: "nats://" + addr}, pki.keyBodies...)
		assertMentions(t, err, "certificate")
	})
	t.Run("another CA", func(t *testing.T) {
		other := newTestPKI(t)
		err := mustFail(t, ClientConfig{URL: "nats://" + addr, CAFile: other.caFile}, pki.keyBodies...)
		assertMentions(t, err, "certificate")
	})
	t.Run("CA file is not a certificate", func(t *testing.T) {
		err := mustFail(t, ClientConfig{URL: "nats://" + addr, CAFile: pki.serverKey}, pki.keyBodies...)
		assertMentions(t, err, "certificate", "rootca")
	})
	t.Run("credentials over TLS", func(t *testing.T) {
		srv := runAuthServer(t, func(o *server.Options) {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: pki.serverCert, KeyFile: pki.serverKey})
			if err != nil {
				t.Fatal(err)
			}
			o.TLSConfig = tc
			o.Username, o.Password = "alice", secretPassword
		})
		mustConnect(t, ClientConfig{URL: srv.ClientURL(), CAFile: pki.caFile, User: "alice", Password: secretPassword})
		// Without the CA the handshake fails before the password is sent.
		mustFail(t, ClientConfig{URL: srv.ClientURL(), User: "alice", Password: secretPassword}, secretPassword)
	})
}

func TestConnectWithMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := runTLSServer(t, pki, true)
	u := srv.ClientURL()
	mustConnect(t, ClientConfig{URL: u, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey})

	t.Run("no client certificate", func(t *testing.T) {
		mustFail(t, ClientConfig{URL: u, CAFile: pki.caFile}, pki.keyBodies...)
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		other := newTestPKI(t)
		mustFail(t, ClientConfig{URL: u, CAFile: pki.caFile, CertFile: other.clientCert, KeyFile: other.clientKey},
			append(other.keyBodies, pki.keyBodies...)...)
	})
	t.Run("key does not match certificate", func(t *testing.T) {
		mustFail(t, ClientConfig{URL: u, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.serverKey}, pki.keyBodies...)
	})
	t.Run("key without certificate", func(t *testing.T) {
		err := mustFail(t, ClientConfig{URL: u, CAFile: pki.caFile, KeyFile: pki.clientKey}, pki.keyBodies...)
		assertMentions(t, err, "cert")
	})
	t.Run("certificate without key", func(t *testing.T) {
		err := mustFail(t, ClientConfig{URL: u, CAFile: pki.caFile, CertFile: pki.clientCert}, pki.keyBodies...)
		assertMentions(t, err, "key")
	})
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in   string
		want string // exact result, or "" to check only that secrets are gone
	}{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"tls://nats.example.com:4222", "tls://nats.example.com:4222"},
		{"127.0.0.1:4222", "127.0.0.1:4222"},
		{"nats://alice:" + secretPassword + "@h:4222", "nats://redacted@h:4222"},
		{"nats://" + secretToken + "@h:4222", "nats://redacted@h:4222"},
		{"nats://a:" + secretPassword + "@h1:4222,nats://h2:4222", "nats://redacted@h1:4222,nats://h2:4222"},
		{"nats://h1:4222, nats://" + secretToken + "@h2:4222", ""},
		{"alice:" + secretPassword + "@h:4222", ""},
		{"nats://alice:pw/" + secretPassword + "@h:4222", ""},
		{"nats://alice:pw#" + secretPassword + "@h:4222", ""},
		{"nats://alice:p%zz" + secretPassword + "@h:4222", ""},
		{"nats://alice:p%40" + secretPassword + "@h:4222", "nats://redacted@h:4222"},
	}
	for _, tt := range tests {
		got := RedactURL(tt.in)
		assertNoSecret(t, "RedactURL("+tt.in+")", got, secretPassword, secretToken)
		if tt.want != "" && got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Every server of a list stays named.
	got := RedactURL("nats://h1:4222, nats://" + secretToken + "@h2:4222")
	if !strings.Contains(got, "h1:4222") {
		t.Errorf("RedactURL dropped h1: %q", got)
	}
}

// TestClientConfigLogForms: however a ClientConfig reaches a log (slog
// text or JSON, by value or pointer, fmt verbs), secrets stay out.
func TestClientConfigLogForms(t *testing.T) {
	const urlPassword = "url-pw-5ecr3t"
	secrets := []string{secretPassword, secretToken, urlPassword}
	cfgs := []struct {
		cfg  ClientConfig
		want string // what the log must say
	}{
		{ClientConfig{URL: "nats://h:4222", User: "alice", Password: secretPassword}, "user alice"},
		{ClientConfig{URL: "nats://h:4222", Token: secretToken}, "auth: token"},
		{ClientConfig{URL: "nats://alice:" + urlPassword + "@h:4222"}, "nats://redacted@h:4222"},
		{ClientConfig{URL: "nats://h:4222", Creds: "/etc/nats/user.creds", Password: secretPassword}, "creds file"},
		{ClientConfig{URL: "nats://h:4222", NKeySeed: "/etc/nats/user.nk", Token: secretToken}, "nkey"},
		{ClientConfig{URL: "tls://h:4222", CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", User: "bob", Password: secretPassword}, "tls"},
	}
	for _, c := range cfgs {
		forms := map[string]string{}
		for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
			"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			var buf bytes.Buffer
			log := slog.New(h(&buf))
			log.Info("connect", "nats", c.cfg)
			log.Info("connect", "nats", &c.cfg)
			log.Info("connect", slog.Any("nats", c.cfg))
			log.With("nats", c.cfg).Info("connect")
			log.Info("connect", slog.Group("cfg", "nats", c.cfg))
			forms[name] = buf.String()
		}
		for _, verb := range []string{"%v", "%+v", "%s", "%#v", "%q"} {
			forms["fmt "+verb] = fmt.Sprintf(verb, c.cfg)
			forms["fmt "+verb+" pointer"] = fmt.Sprintf(verb, &c.cfg)
		}
		for name, text := range forms {
			assertNoSecret(t, name, text, secrets...)
			if !strings.Contains(text, c.want) {
				t.Errorf("%s = %q, want it to say %q", name, text, c.want)
			}
		}
	}
}
