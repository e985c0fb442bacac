# Configures, builds and runs one consumer project (cmake -P script, called by ctest).
# Inputs: SOURCE, BINARY, PREFIX_PATH, STEER_SOURCE_DIR, LAUNCHER, MODEL.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer step failed (${result}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${BINARY})
run(${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_PREFIX_PATH=${PREFIX_PATH}" -DSTEER_SOURCE_DIR=${STEER_SOURCE_DIR}
    -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
run(${CMAKE_COMMAND} --build ${BINARY} -j 2)
run(${BINARY}/consumer ${MODEL})
