//go:build amd64 && !purego

#include "textflag.h"

// func maskSSE2(b []byte, key uint32)
TEXT ·maskSSE2(SB), NOSPLIT, $0-28
	MOVQ b_base+0(FP), DI
	MOVQ b_len+8(FP), CX
	MOVL key+24(FP), AX
	MOVQ AX, BX
	SHLQ $32, BX
	ORQ  BX, AX               // AX = key repeated twice
	MOVQ AX, X0
	PSHUFD $0x44, X0, X0      // X0 = key repeated four times
	CMPQ CX, $64
	JB   sse16

sse64:
	MOVOU (DI), X1
	MOVOU 16(DI), X2
	MOVOU 32(DI), X3
	MOVOU 48(DI), X4
	PXOR  X0, X1
	PXOR  X0, X2
	PXOR  X0, X3
	PXOR  X0, X4
	MOVOU X1, (DI)
	MOVOU X2, 16(DI)
	MOVOU X3, 32(DI)
	MOVOU X4, 48(DI)
	ADDQ  $64, DI
	SUBQ  $64, CX
	CMPQ  CX, $64
	JAE   sse64

sse16:
	CMPQ  CX, $16
	JB    tail8
	MOVOU (DI), X1
	PXOR  X0, X1
	MOVOU X1, (DI)
	ADDQ  $16, DI
	SUBQ  $16, CX
	JMP   sse16

tail8:
	CMPQ CX, $8
	JB   tail1
	XORQ AX, (DI)
	ADDQ $8, DI
	SUBQ $8, CX

tail1:
	TESTQ CX, CX
	JZ    done
	XORB  AL, (DI)
	SHRQ  $8, AX
	INCQ  DI
	DECQ  CX
	JMP   tail1

done:
	RET

// func maskAVX2(b []byte, key uint32)
TEXT ·maskAVX2(SB), NOSPLIT, $0-28
	MOVQ b_base+0(FP), DI
	MOVQ b_len+8(FP), CX
	MOVL key+24(FP), AX
	MOVQ AX, BX
	SHLQ $32, BX
	ORQ  BX, AX               // AX = key repeated twice
	MOVQ AX, X0
	VPBROADCASTQ X0, Y0       // Y0 = key repeated eight times
	CMPQ CX, $128
	JB   avx32

avx128:
	VPXOR   (DI), Y0, Y1
	VPXOR   32(DI), Y0, Y2
	VPXOR   64(DI), Y0, Y3
	VPXOR   96(DI), Y0, Y4
	VMOVDQU Y1, (DI)
	VMOVDQU Y2, 32(DI)
	VMOVDQU Y3, 64(DI)
	VMOVDQU Y4, 96(DI)
	ADDQ    $128, DI
	SUBQ    $128, CX
	CMPQ    CX, $128
	JAE     avx128

avx32:
	CMPQ    CX, $32
	JB      avx16
	VPXOR   (DI), Y0, Y1
	VMOVDQU Y1, (DI)
	ADDQ    $32, DI
	SUBQ    $32, CX
	JMP     avx32

avx16:
	VZEROUPPER
	CMPQ  CX, $16
	JB    avxtail8
	MOVOU (DI), X1
	PXOR  X0, X1
	MOVOU X1, (DI)
	ADDQ  $16, DI
	SUBQ  $16, CX

avxtail8:
	CMPQ CX, $8
	JB   avxtail1
	XORQ AX, (DI)
	ADDQ $8, DI
	SUBQ $8, CX

avxtail1:
	TESTQ CX, CX
	JZ    avxdone
	XORB  AL, (DI)
	SHRQ  $8, AX
	INCQ  DI
	DECQ  CX
	JMP   avxtail1

avxdone:
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax, edx uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET
