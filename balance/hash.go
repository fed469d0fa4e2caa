package balance

// Sticky clients are placed by rendezvous (highest-random-weight) hashing:
// every (key, backend key) pair gets a pseudo-random score and a client goes
// to the backend with the highest score (pickLocked). Removing a backend
// moves only the clients whose winner it was; adding one moves only the
// clients it now wins, about 1/n of them.

// score hashes key and id with FNV-1a (a separator byte between them, so
// "a"+"bc" and "ab"+"c" differ) and finishes with the splitmix64 mixer, which
// spreads FNV's weak high bits over the whole word.
func score(key, id string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	h ^= 0xff
	h *= prime
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
