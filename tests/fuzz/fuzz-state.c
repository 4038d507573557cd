/*
 * fuzz-state.c - libFuzzer target over the restart state's reader
 * (daemon/broker-state.c, PROTOCOL.md "The restart, as built").  Every
 * record carries a CRC-32C, which random bytes would almost never pass,
 * so the input is records without their framing and the target frames
 * them, checksums and all:
 *
 *	u8 type, u16 len (LE), len bytes of body, again and again
 *
 * (a chunk cut short is framed as it is).  Every 64th input is also
 * taken raw, as bytes a manager could pass.  A state is loaded whole or
 * refused whole.  One that loads is saved again, and that copy must load
 * into a fresh broker with the same counts (the writer and the reader
 * agree on every state the reader accepts); then everything is freed
 * (LeakSanitizer checks the memory).
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "record.h"
#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
load_and_reload(const uint8_t *data, size_t size)
{
	struct broker *b = broker_new(NULL), *again = broker_new(NULL);
	uint64_t nmb = 0, nmsg = 0, nmb2 = 0, nmsg2 = 0, saved_mb, saved_msg;
	const char *why = NULL;
	struct state_out so;
	struct state_in si;
	int fd;

	if (b == NULL || again == NULL)
		abort();
	log_set_verbose(-1);
	if (broker_state_load(b, data, size, &why, &nmb, &nmsg) == 0) {
		if (state_out_open(&so) < 0 ||
		    broker_state_save(b, &so, &saved_mb, &saved_msg) < 0 ||
		    (fd = state_out_seal(&so)) < 0)
			abort();
		state_out_free(&so);
		if (saved_mb != nmb || saved_msg != nmsg ||
		    state_in_open(&si, fd, &why) < 0 ||
		    broker_state_load(again, si.buf, si.size, &why, &nmb2,
		    &nmsg2) != 0 || nmb2 != nmb || nmsg2 != nmsg)
			abort();
		state_in_close(&si);
		close(fd);
	}
	broker_free(b);
	broker_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_writer w;
	size_t off = 0;

	proto_writer_init(&w);
	while (off < size) {
		size_t len = size - off >= 3 ? (size_t)data[off + 1] |
		    (size_t)data[off + 2] << 8 : 0;
		size_t at = off + 3 < size ? off + 3 : size;

		if (len > size - at)
			len = size - at;
		if (!record_put(&w, data[off], data + at, len))
			abort();
		off = at + len;
	}
	load_and_reload(w.buf, w.len);
	proto_writer_free(&w);
	if (size % 64 == 0)
		load_and_reload(data, size);
	return 0;
}
